"""Agents: instructions + tools + voice, and handoffs between agents within one call.

::

    spanish = Agent("Spanish agent", "You only speak Spanish.", handoff_description="Speaks Spanish.")
    english = Agent("English agent", "You only speak English.")
    triage = Agent("Triage agent", "Hand off based on the caller's language.", handoffs=[spanish, english])

Each handoff target becomes a tool ``transfer_to_<name in snake_case>`` on the agent that may hand off
(``transfer_to_spanish_agent``). When the model calls it, the runner makes the target the active agent and
updates the live session (instructions, tools, voice); the conversation itself goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

from voicebot.errors import ToolDefinitionError
from voicebot.tools.registry import Tool, tool
from voicebot.tools.schema import JsonSchema, object_schema


class SessionPieces(TypedDict):
    """The parts of a session configuration an agent decides."""

    instructions: str
    tools: list[dict[str, Any]]
    voice: str | None


def snake_case(name: str) -> str:
    """``"Spanish Agent"`` → ``"spanish_agent"``; anything not a letter or digit becomes ``_``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass(frozen=True, slots=True)
class Handoff:
    """The generated tool that hands the conversation to ``target``."""

    target: Agent
    name: str
    description: str

    def realtime_definition(self) -> JsonSchema:
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": object_schema({})}  # fmt: skip

    def responses_definition(self) -> JsonSchema:
        return {**self.realtime_definition(), "strict": True}


AnyTool = Tool[..., Any] | Handoff


class Agent:
    """One persona of the assistant: instructions, tools, an optional voice and the agents it may hand off to.

    ``tools`` may hold ``@tool`` objects or plain functions (wrapped with ``tool()``). ``handoffs`` is a list
    and may be appended to after construction (for agents that hand back to each other).
    """

    def __init__(
        self,
        name: str,
        instructions: str,
        tools: Iterable[Tool[..., Any] | Callable[..., Any]] = (),
        *,
        voice: str | None = None,
        handoffs: Iterable[Agent] = (),
        handoff_description: str | None = None,
    ) -> None:
        if not snake_case(name):
            raise ToolDefinitionError(f"agent name {name!r} needs at least one letter or digit")
        self.name = name
        self.instructions = instructions
        self.tools: list[Tool[..., Any]] = [t if isinstance(t, Tool) else tool(t) for t in tools]
        self.voice = voice
        self.handoffs: list[Agent] = list(handoffs)
        self.handoff_description = handoff_description
        self.tools_by_name()  # reject duplicate names now

    @property
    def handoff_tool_name(self) -> str:
        """The name of the tool other agents call to hand off to this one."""
        return f"transfer_to_{snake_case(self.name)}"[:64]

    def handoff_tool(self) -> Handoff:
        description = f"Hand the conversation to the {self.name}."
        if self.handoff_description:
            description += f" {self.handoff_description}"
        return Handoff(self, self.handoff_tool_name, description)

    def tools_by_name(self) -> dict[str, AnyTool]:
        """Every tool the model may call while this agent is active, handoffs included."""
        found: dict[str, AnyTool] = {}
        items: list[AnyTool] = [*self.tools, *(a.handoff_tool() for a in self.handoffs)]
        for item in items:
            if item.name in found:
                raise ToolDefinitionError(f"agent {self.name!r}: two tools are named {item.name!r}")
            found[item.name] = item
        return found

    def tool_definitions(self, api: str = "realtime") -> list[dict[str, Any]]:
        """Tool dicts for ``session.tools`` (api "realtime") or for the Responses API (api "responses")."""
        if api not in ("realtime", "responses"):
            raise ValueError(f"api must be 'realtime' or 'responses', not {api!r}")
        return [
            t.realtime_definition() if api == "realtime" else t.responses_definition()
            for t in self.tools_by_name().values()
        ]

    def session_config(self) -> SessionPieces:
        """Instructions, Realtime tool dicts and voice (None: keep the server's default voice)."""
        return SessionPieces(instructions=self.instructions, tools=self.tool_definitions(), voice=self.voice)

    def __repr__(self) -> str:
        handoffs = [a.name for a in self.handoffs]
        return f"Agent({self.name!r}, tools={[t.name for t in self.tools]}, handoffs={handoffs})"
