"""What a tool may do to its call: the ``CallControl`` protocol and the ``ToolContext`` a tool gets.

The call (``voicebot.call.Call``) implements ``CallControl``. A tool never sees the call itself: it declares a
parameter annotated ``ToolContext`` and the runner passes one in (that parameter is hidden from the schema)::

    @tool
    async def goodbye(ctx: ToolContext) -> str:
        \"\"\"Say goodbye and end the call.\"\"\"
        await ctx.say("Thanks for calling, goodbye!")
        await ctx.hang_up("caller done")
        return "ended"
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from voicebot.errors import LocalError


@runtime_checkable
class CallControl(Protocol):
    """The call-side operations tools can ask for.

    ``call_id`` identifies the conversation (not a function call); ``caller`` is who is on the line: the SIP
    ``From`` identity for phone calls, ``"browser"`` for WebRTC calls.
    """

    call_id: str
    caller: str

    async def hang_up(self, reason: str) -> None: ...

    async def transfer(self, target: str) -> None: ...

    async def send_dtmf(self, digits: str) -> None: ...

    async def say(self, text: str) -> None: ...

    async def update_session(
        self, *, instructions: str | None, tools: list[dict[str, Any]] | None, voice: str | None
    ) -> None: ...


class ToolError(LocalError):
    """Raise from a tool to hand the model a clean error message (no traceback is logged).

    Any other exception also becomes an error output, but is logged as a tool failure.
    """

    code = "tool_error"


class ToolContext:
    """Passed to a tool that declares a parameter annotated ``ToolContext``.

    ``call_id`` and ``caller`` describe the call; ``tool_call_id`` and ``tool_name`` the function call being
    answered. The async methods act on the call. Sync tools (run in a worker thread) may read the attributes
    but cannot await the methods.
    """

    __slots__ = ("_control", "agent_name", "tool_call_id", "tool_name")

    def __init__(
        self, control: CallControl, *, tool_call_id: str = "", tool_name: str = "", agent_name: str = ""
    ) -> None:
        self._control = control
        self.tool_call_id = tool_call_id
        self.tool_name = tool_name
        self.agent_name = agent_name

    @property
    def call_id(self) -> str:
        """The conversation's id (the same for every tool call in one call)."""
        return self._control.call_id

    @property
    def caller(self) -> str:
        """Who is calling: the SIP From identity, or ``"browser"``."""
        return self._control.caller

    @property
    def dtmf_received(self) -> str:
        """Every key the caller has pressed in this call so far, in order (RFC 4733 or SIP INFO), for
        example ``"1234#"``; ``""`` on a call without a keypad (a browser)."""
        return str(getattr(self._control, "dtmf_received", ""))

    async def hang_up(self, reason: str = "hung up by a tool") -> None:
        await self._control.hang_up(reason)

    async def transfer(self, target: str) -> None:
        """Blind-transfer the caller to ``target`` (a SIP URI or number chosen by your code)."""
        await self._control.transfer(target)

    async def send_dtmf(self, digits: str) -> None:
        await self._control.send_dtmf(digits)

    async def say(self, text: str) -> None:
        """Have the assistant speak ``text`` now."""
        await self._control.say(text)

    def __repr__(self) -> str:
        return f"ToolContext(call_id={self.call_id!r}, tool={self.tool_name!r}, id={self.tool_call_id!r})"
