"""Where a call's model side comes from: the agent (loaded once per app) and a fresh model session per call."""

from __future__ import annotations

import logging

from aiohttp import web

from voicebot.config import Settings
from voicebot.ports import ModelSession
from voicebot.realtime.client import RealtimeModelSession
from voicebot.realtime.wire import AudioFormat, SessionConfig
from voicebot.tools import Agent, ToolRunner, load_agent
from voicebot.tools.builtin import end_call, get_current_time

log = logging.getLogger("voicebot.server")

AGENT = web.AppKey("agent", Agent)


def default_agent(settings: Settings) -> Agent:
    """The agent used when ``--agent`` is not given: the configured instructions and two safe built-ins."""
    return Agent(name="assistant", instructions=settings.instructions, tools=[get_current_time, end_call])


def resolve_agent(settings: Settings) -> Agent:
    if settings.agent:
        agent = load_agent(settings.agent)
        log.info("agent %r loaded from %s", agent.name, settings.agent)
        return agent
    return default_agent(settings)


def create_tool_runner(app: web.Application) -> ToolRunner:
    """A runner per call: it tracks which agent is active after handoffs."""
    from voicebot.server.app import SETTINGS

    s = app[SETTINGS]
    return ToolRunner(app[AGENT], default_timeout_s=s.tool_timeout_s, filler_after_s=s.tool_filler_after_s)


def create_model_session(
    app: web.Application,
    *,
    caller: str,
    audio_format: AudioFormat = "audio/pcm",
    runner: ToolRunner | None = None,
) -> ModelSession:
    """A Realtime session for one call, configured from the active agent (or ``runner``'s active agent)."""
    from voicebot.server.app import SETTINGS, upstream_of

    settings = app[SETTINGS]
    pieces = (runner or ToolRunner(app[AGENT])).session_config()
    config = SessionConfig(
        model=settings.model,
        voice=pieces["voice"] or settings.voice,
        instructions=pieces["instructions"],
        tools=tuple(pieces["tools"]),
        input_format=audio_format,
        output_format=audio_format,
    )
    log.debug("model session for %s: %s", caller, config.model)
    return RealtimeModelSession.from_settings(settings, upstream_of(app), config)
