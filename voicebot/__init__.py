"""voicebot: a realtime voice agent server.

The public surface is small: ``Agent``, ``tool``, ``ToolContext``, ``create_app`` and ``Settings``; everything
else is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from voicebot.config import Settings
    from voicebot.server.app import create_app
    from voicebot.tools import Agent, ToolContext, tool

__all__ = ["Agent", "Settings", "ToolContext", "__version__", "create_app", "tool"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import voicebot.audio` does not pull in aiohttp.
    if name == "create_app":
        from voicebot.server.app import create_app

        return create_app
    if name == "Settings":
        from voicebot.config import Settings

        return Settings
    if name in ("Agent", "ToolContext", "tool"):
        import voicebot.tools

        return getattr(voicebot.tools, name)
    raise AttributeError(f"module 'voicebot' has no attribute {name!r}")
