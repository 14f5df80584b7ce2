"""Run the model's function calls and turn every outcome into a ``function_call_output`` string.

``ToolRunner.run`` never raises for a tool's sake: bad JSON, arguments that fail validation, an unknown tool
name, a timeout, a cancellation and an exception all become a JSON error object the model can read and act
on (``{"error": "...", ...}``). Only the cancellation of ``run`` itself (the call ending) propagates.

``run`` is safe to call concurrently: each call runs the tool in its own task, and the Call starts one
``run`` per ``ToolCall`` so that several calls in one response overlap.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Sequence
from typing import Any

import pydantic
import pydantic_core

from voicebot.errors import ConfigError
from voicebot.events import ToolCall
from voicebot.tools.agents import Agent, Handoff, SessionPieces
from voicebot.tools.context import CallControl, ToolContext, ToolError
from voicebot.tools.registry import Tool

log = logging.getLogger("voicebot.tools")

DEFAULT_FILLER = "One moment, please."
_GRACE_S = 0.1  # how long to wait for a timed-out tool to acknowledge cancellation


def error_output(message: str, **details: Any) -> str:
    """The JSON text sent back to the model when a call failed."""
    return json.dumps({"error": message, **details}, ensure_ascii=False, default=str)


def format_output(result: Any) -> str:
    """A tool's return value → output text: strings as they are, everything else as JSON."""
    if isinstance(result, str):
        return result
    if result is None:
        return '{"ok": true}'
    try:
        return pydantic_core.to_json(result).decode()
    except pydantic_core.PydanticSerializationError:
        return json.dumps({"result": str(result)}, ensure_ascii=False)


def _consume(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as never retrieved


def _validation_details(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(arguments)", "problem": e["msg"]}
        for e in exc.errors()
    ]


class ToolRunner:
    """Executes tool calls for one conversation and tracks which agent is active.

    Args:
        tools: An ``Agent`` (handoffs included) or a plain list of tools.
        default_timeout_s: Timeout for tools that do not set their own.
        filler_after_s: Say a filler line when a tool is still running after this long (None: never).
        filler_text: The default filler line.
    """

    def __init__(
        self,
        tools: Agent | Sequence[Tool[..., Any]],
        *,
        default_timeout_s: float = 10.0,
        filler_after_s: float | None = 1.5,
        filler_text: str = DEFAULT_FILLER,
    ) -> None:
        if not default_timeout_s > 0:
            raise ConfigError(f"default_timeout_s must be positive, got {default_timeout_s!r}")
        if filler_after_s is not None and not filler_after_s >= 0:
            raise ConfigError(f"filler_after_s must be >= 0 or None, got {filler_after_s!r}")
        self.agent = tools if isinstance(tools, Agent) else Agent("assistant", "", tools)
        self.default_timeout_s = default_timeout_s
        self.filler_after_s = filler_after_s
        self.filler_text = filler_text
        self._cancellable: dict[asyncio.Task[Any], str] = {}  # in-flight cancellable tool → tool call id
        self._cancel_reasons: dict[asyncio.Task[Any], str] = {}

    def session_config(self) -> SessionPieces:
        """Instructions, tools and voice of the active agent (for the initial ``session.update``)."""
        return self.agent.session_config()

    @property
    def in_flight_cancellable(self) -> int:
        return len(self._cancellable)

    def cancel_cancellable(self, reason: str = "the caller interrupted") -> None:
        """Cancel every running tool marked ``cancellable`` (barge-in); their outputs become "cancelled"
        errors. Tools not marked cancellable keep running."""
        for task, call_id in list(self._cancellable.items()):
            if not task.done():
                self._cancel_reasons[task] = reason
                task.cancel()
                log.info("tool call %s cancelled: %s", call_id, reason)

    async def run(self, call: ToolCall, control: CallControl) -> str:
        """Execute one function call and return the output text for ``submit_tool_output``."""
        entry = self.agent.tools_by_name().get(call.name)
        if entry is None:
            log.warning("call %s/%s: model called unknown tool %r", control.call_id, call.call_id, call.name)
            available = sorted(self.agent.tools_by_name())
            return error_output(f"unknown tool {call.name!r}", available_tools=available)
        if isinstance(entry, Handoff):
            return await self._handoff(entry, call, control)
        try:
            kwargs = entry.parameters.parse(call.arguments)
        except pydantic.ValidationError as exc:
            log.info(
                "call %s/%s: invalid arguments for %s: %s",
                control.call_id,
                call.call_id,
                call.name,
                exc.errors(),
            )
            return error_output(f"invalid arguments for {call.name}", details=_validation_details(exc))
        except (ValueError, RecursionError) as exc:
            return error_output(f"arguments for {call.name} are not a JSON object: {exc}")
        if entry.parameters.context_param is not None:
            kwargs[entry.parameters.context_param] = ToolContext(
                control, tool_call_id=call.call_id, tool_name=call.name, agent_name=self.agent.name
            )
        task = asyncio.create_task(self._invoke(entry, kwargs), name=f"tool {call.name} {call.call_id}")
        if entry.cancellable:
            self._cancellable[task] = call.call_id
        try:
            return await self._supervise(entry, task, call, control)
        finally:
            self._cancellable.pop(task, None)
            self._cancel_reasons.pop(task, None)

    @staticmethod
    async def _invoke(entry: Tool[..., Any], kwargs: dict[str, Any]) -> Any:
        if entry.is_async:
            return await entry.func(**kwargs)
        return await asyncio.to_thread(functools.partial(entry.func, **kwargs))

    async def _supervise(
        self, entry: Tool[..., Any], task: asyncio.Task[Any], call: ToolCall, control: CallControl
    ) -> str:
        loop = asyncio.get_running_loop()
        timeout = entry.timeout_s if entry.timeout_s is not None else self.default_timeout_s
        deadline = loop.time() + timeout
        filler = self.filler_text if entry.filler is None else entry.filler
        try:
            if filler and self.filler_after_s is not None and self.filler_after_s < timeout:
                done, _ = await asyncio.wait({task}, timeout=self.filler_after_s)
                if not done:
                    await self._say_filler(control, filler, call)
            await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        except asyncio.CancelledError:
            self._abandon(task)
            raise
        if not task.done():
            self._abandon(task)
            await asyncio.wait({task}, timeout=_GRACE_S)  # let an async tool run its cleanup
            log.warning(
                "call %s/%s: tool %s timed out after %.3g s",
                control.call_id,
                call.call_id,
                call.name,
                timeout,
            )
            return error_output(f"{call.name} timed out after {timeout:g} seconds", timeout_s=timeout)
        return self._outcome(task, call, control)

    def _outcome(self, task: asyncio.Task[Any], call: ToolCall, control: CallControl) -> str:
        if task.cancelled():
            reason = self._cancel_reasons.get(task, "cancelled")
            return error_output(f"{call.name} was cancelled", cancelled=True, reason=reason)
        exc = task.exception()
        if isinstance(exc, ToolError):
            log.info(
                "call %s/%s: tool %s reported: %s", control.call_id, call.call_id, call.name, exc.message
            )
            return error_output(exc.message)
        if exc is not None:
            log.error("call %s/%s: tool %s failed", control.call_id, call.call_id, call.name, exc_info=exc)
            return error_output(f"{call.name} failed: {type(exc).__name__}: {exc}")
        return format_output(task.result())

    async def _say_filler(self, control: CallControl, text: str, call: ToolCall) -> None:
        try:
            await control.say(text)
        except Exception:
            log.warning(
                "call %s/%s: could not say the filler for %s",
                control.call_id,
                call.call_id,
                call.name,
                exc_info=True,
            )

    @staticmethod
    def _abandon(task: asyncio.Task[Any]) -> None:
        """Cancel a tool task whose result nobody will read (a sync tool's thread runs to its end)."""
        task.cancel()
        task.add_done_callback(_consume)

    async def _handoff(self, handoff: Handoff, call: ToolCall, control: CallControl) -> str:
        previous, target = self.agent, handoff.target
        self.agent = target
        pieces = target.session_config()
        try:
            await control.update_session(
                instructions=pieces["instructions"], tools=pieces["tools"], voice=pieces["voice"]
            )
        except Exception as exc:
            self.agent = previous
            log.error(
                "call %s/%s: handoff to %s failed", control.call_id, call.call_id, target.name, exc_info=True
            )
            return error_output(f"handoff to {target.name} failed: {type(exc).__name__}: {exc}")
        log.info("call %s/%s: handoff %s → %s", control.call_id, call.call_id, previous.name, target.name)
        return json.dumps({"assistant": target.name, "status": "transferred"})
