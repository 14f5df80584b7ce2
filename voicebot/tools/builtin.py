"""Built-in tools every phone agent tends to need.

``end_call``, ``send_dtmf`` and ``get_current_time`` are ready-made tools; ``transfer_call_tool(targets)``
builds a ``transfer_call`` tool bound to an allow-list, because the model must never dial a number of its
own choosing::

    transfer = transfer_call_tool({"sales": "sip:sales@pbx.example.com", "support": "+15550100"},
                                  aliases={"billing": "support"})
    agent = Agent("Reception", "...", tools=[end_call, transfer, get_current_time])
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from voicebot.errors import ToolDefinitionError
from voicebot.tools.context import ToolContext, ToolError
from voicebot.tools.registry import Tool, tool

DTMF_PATTERN = "^[0-9*#A-D]{1,32}$"


@tool(filler=False)
async def end_call(ctx: ToolContext, reason: str | None = None) -> dict[str, str]:
    """End the call. Say goodbye first; call this only when the caller is done or asks to hang up.

    Args:
        reason: Why the call ends, in a few words (for the logs).
    """
    await ctx.hang_up(reason or "ended by the assistant")
    return {"status": "hanging up"}


@tool(filler=False)
async def send_dtmf(ctx: ToolContext, digits: Annotated[str, Field(pattern=DTMF_PATTERN)]) -> dict[str, str]:
    """Press phone keys (DTMF tones) on the call, for example to navigate a phone menu.

    Args:
        digits: The keys to press, in order: 0-9, *, # and A-D (at most 32).
    """
    await ctx.send_dtmf(digits)
    return {"sent": digits}


@tool(filler=False)
def get_current_time(timezone: str | None = None) -> dict[str, str]:
    """Get the current date and time.

    Args:
        timezone: An IANA time zone such as "Europe/Paris" or "America/New_York"; null for the server's zone.
    """
    zone: dt.tzinfo | None = None
    if timezone is not None:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ToolError(f"unknown time zone {timezone!r}; use an IANA name like 'Europe/Paris'") from None
    now = dt.datetime.now(zone).astimezone(zone)
    return {
        "timezone": timezone or (now.tzname() or "local"),
        "iso": now.isoformat(timespec="seconds"),
        "spoken": now.strftime("%A, %B %d %Y, %H:%M").replace(" 0", " "),
    }


def transfer_call_tool(
    targets: Mapping[str, str], *, aliases: Mapping[str, str] | None = None, description: str | None = None
) -> Tool[..., Any]:
    """Build a ``transfer_call`` tool limited to ``targets`` (name → SIP URI or number).

    The model chooses a name (or an alias from ``aliases``, alias → name); the schema lists only those, and
    the tool refuses anything else. The destinations themselves are never shown to the model.
    """
    aliases = dict(aliases or {})
    if not targets:
        raise ToolDefinitionError("transfer_call_tool needs at least one target")
    for alias, name in aliases.items():
        if name not in targets:
            raise ToolDefinitionError(
                f"transfer_call_tool: alias {alias!r} points to unknown target {name!r}"
            )
    choices = [*targets, *(a for a in aliases if a not in targets)]
    allowed = dict(targets)
    resolve = {**{a: aliases[a] for a in aliases}, **{n: n for n in targets}}
    Target = enum.Enum("TransferTarget", {f"t{i}": c for i, c in enumerate(choices)})  # type: ignore[misc]

    async def transfer_call(ctx: ToolContext, target: Any) -> dict[str, str]:
        choice = str(target.value) if isinstance(target, enum.Enum) else str(target)
        if choice not in resolve:
            raise ToolError(f"cannot transfer to {choice!r}; allowed: {', '.join(choices)}")
        name = resolve[choice]
        await ctx.transfer(allowed[name])
        return {"status": "transferring", "target": name}

    # the real annotation is only known now: an Enum of the allowed names (the schema's enum)
    target_hint = Annotated[Target, Field(description="Where to transfer the caller.")]
    transfer_call.__annotations__ = {"ctx": ToolContext, "target": target_hint, "return": dict[str, str]}
    text = description or (
        "Transfer the caller to a person or department (blind transfer; this call ends for you). "
        "Tell the caller before transferring."
    )
    # the schema's enum holds the allowed names; the description repeats them for the model
    return Tool(transfer_call, description=f"{text} Allowed targets: {', '.join(choices)}.", filler=False)
