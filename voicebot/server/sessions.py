"""Where a call's model side comes from: the agent (loaded once per app), a model session per call (Realtime
with failover to the cascade by default), and what runs after a call ends."""

from __future__ import annotations

import logging

from aiohttp import web

from voicebot.call import Call, CallStats
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


def preload_call_modules(settings: Settings) -> None:
    """Import at startup what the first call would otherwise import on the event loop: the fallback wiring
    and the openai SDK behind it (about 0.3 s, and some 500 modules). At startup it delays nothing; it keeps
    that stall off the first call, and the modules land in the frozen startup heap instead of being walked by
    every full garbage collection (``capacity.freeze_startup_heap``)."""
    if settings.fallback_enabled:
        import voicebot.fallback.wiring  # noqa: F401


def create_tool_runner(app: web.Application) -> ToolRunner:
    """A runner per call: it tracks which agent is active after handoffs."""
    from voicebot.server.app import SETTINGS

    s = app[SETTINGS]
    return ToolRunner(app[AGENT], default_timeout_s=s.tool_timeout_s, filler_after_s=s.tool_filler_after_s)


def realtime_config(settings: Settings, runner: ToolRunner, audio_format: AudioFormat) -> SessionConfig:
    """The Realtime session config of the runner's active agent (handoffs change it during a call)."""
    pieces = runner.session_config()
    return SessionConfig(
        model=settings.model,
        voice=pieces["voice"] or settings.voice,
        instructions=pieces["instructions"],
        tools=tuple(pieces["tools"]),
        input_format=audio_format,
        output_format=audio_format,
        input_audio_batch_ms=settings.realtime_input_batch_ms,
    )


def create_realtime_session(
    app: web.Application, *, audio_format: AudioFormat = "audio/pcm", runner: ToolRunner | None = None
) -> RealtimeModelSession:
    """A plain Realtime session (no failover)."""
    from voicebot.server.app import SETTINGS, upstream_of

    settings = app[SETTINGS]
    config = realtime_config(settings, runner or ToolRunner(app[AGENT]), audio_format)
    return RealtimeModelSession.from_settings(settings, upstream_of(app), config)


def create_model_session(
    app: web.Application,
    *,
    caller: str,
    audio_format: AudioFormat = "audio/pcm",
    runner: ToolRunner | None = None,
) -> ModelSession:
    """The model side of one call: Realtime, failing over to the cascade when ``fallback_enabled``."""
    from voicebot.server.app import SETTINGS

    log.debug("model session for %s (%s)", caller, audio_format)
    if app[SETTINGS].fallback_enabled:
        from voicebot.fallback.wiring import create_failover_session

        return create_failover_session(app, caller=caller, audio_format=audio_format, runner=runner)
    return create_realtime_session(app, audio_format=audio_format, runner=runner)


async def run_call(app: web.Application, call: Call) -> CallStats:
    """Run ``call`` to its end, then its post-call tasks (summary and record, when ``calls_dir`` is set)."""
    from voicebot.server.app import SETTINGS

    stats = await call.run()
    if app[SETTINGS].calls_dir is not None:
        from voicebot.fallback.wiring import finish_call

        try:
            await finish_call(app, call)
        except Exception:
            log.exception("call %s: post-call tasks failed", call.call_id)
    return stats
