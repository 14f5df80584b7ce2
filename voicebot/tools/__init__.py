"""Function tools and agents: ``@tool``, ``ToolContext``, ``Agent``, ``ToolRunner``, ``load_agent``.

See docs/tools.md. The call side implements ``CallControl``; the runner turns each ``ToolCall`` event into a
``function_call_output`` string.
"""

from __future__ import annotations

from voicebot.tools.agents import Agent, Handoff, SessionPieces
from voicebot.tools.context import CallControl, ToolContext, ToolError
from voicebot.tools.loader import load_agent
from voicebot.tools.registry import Tool, tool
from voicebot.tools.runner import ToolRunner

__all__ = [
    "Agent",
    "CallControl",
    "Handoff",
    "SessionPieces",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRunner",
    "load_agent",
    "tool",
]
