"""Browser calls: WebRTC signalling routes, the call registry, and the demo page.

::

    GET    /                      the demo page (web/index.html); its files under /static/
    GET    /api/config            {"ice_servers": [...], "max_calls": N}: what the page needs to connect
    POST   /api/calls             {"sdp", "type": "offer", "phone_quality"?, "agent"?}
                                  → 201 {"sdp", "type": "answer", "call_id"}
                                  400 junk / no audio, 503 full (Retry-After), 502 model upstream down
    GET    /api/calls             the calls in progress
    DELETE /api/calls/{call_id}   hang up → 204 (404 when unknown)

Every call is one task owned by the ``CallRegistry`` on the app (``CALLS``); nothing is fire-and-forget.
App shutdown hangs up every call and waits for them to end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from voicebot.call import Call, ToolExecutor
from voicebot.errors import BadRequest, CapacityError, UpstreamError, VoicebotError
from voicebot.ports import ModelSession
from voicebot.server import sessions
from voicebot.server.app import SETTINGS
from voicebot.server.capacity import CALL_SLOTS, CallSlots
from voicebot.webrtc.ice import restrict_host_addresses
from voicebot.webrtc.peer import WebRtcPort, answer_offer
from voicebot.webrtc.relay import EventRelay, ObservedModel
from voicebot.webrtc.sdp import OfferInfo, parse_offer

log = logging.getLogger("voicebot.server.calls")

#: How long DELETE and shutdown wait for a call to finish closing.
HANGUP_WAIT_S = 5.0


class ModelFactory(Protocol):
    """Makes the model side of a new call: the (unstarted) model session and the runner for its tools.

    The default is ``sessions_factory`` (``voicebot.server.sessions``); tests and benchmarks put their own
    on the app under ``MODEL_FACTORY``.
    """

    def __call__(
        self, app: web.Application, *, caller: str, phone_quality: bool = False
    ) -> tuple[ModelSession, ToolExecutor | None]: ...


@dataclass(slots=True)
class ActiveCall:
    call: Call
    port: WebRtcPort
    relay: EventRelay
    phone_quality: bool
    created_at: float = field(default_factory=time.monotonic)
    task: asyncio.Task[Any] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "call_id": self.call.call_id,
            "caller": self.call.caller,
            "codec": self.port.codec,
            "phone_quality": self.phone_quality,
            "connection": self.port.connection_state,
            "state": self.relay.state,
            "age_s": round(time.monotonic() - self.created_at, 3),
        }


class CallRegistry:
    """The browser calls in progress. Each takes a slot of the server-wide ``CallSlots`` (shared with phone
    calls) before anything is allocated, and gives it back when it ends."""

    def __init__(self, slots: CallSlots) -> None:
        self.slots = slots
        self._calls: dict[str, ActiveCall] = {}
        self._reserved = 0
        self._closing = False

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> ActiveCall | None:
        return self._calls.get(call_id)

    def all(self) -> list[ActiveCall]:
        return list(self._calls.values())

    def reserve(self) -> None:
        if self._closing:
            raise CapacityError("the server is shutting down", retry_after_s=10)
        self.slots.acquire()
        self._reserved += 1

    def release(self) -> None:
        self._reserved -= 1
        self.slots.release()

    def start(self, active: ActiveCall, run: Coroutine[Any, Any, Any]) -> None:
        """Run a call whose slot was reserved (``run`` drives it to its end and the post-call tasks); the
        registry owns that task until it ends."""
        self._reserved -= 1
        cid = active.call.call_id
        self._calls[cid] = active
        task = asyncio.get_running_loop().create_task(run, name=f"call:{cid}")
        active.task = task
        task.add_done_callback(lambda _t: self._finished(cid))

    def _finished(self, call_id: str) -> None:
        self._calls.pop(call_id, None)
        self.slots.release()

    async def hang_up(self, call_id: str, reason: str = "hung up by the page") -> bool:
        active = self._calls.get(call_id)
        if active is None:
            return False
        await active.call.hang_up(reason, drain_s=0)
        await _wait(active)
        return True

    async def close_all(self) -> None:
        self._closing = True
        calls = self.all()
        for active in calls:
            await active.call.hang_up("server shutting down", drain_s=0)
        for active in calls:
            await _wait(active)


async def _wait(active: ActiveCall) -> None:
    task = active.task
    if task is None or task.done():
        return
    done, _ = await asyncio.wait({task}, timeout=HANGUP_WAIT_S)
    if not done:
        log.warning("call %s did not end in %.0f s; cancelling it", active.call.call_id, HANGUP_WAIT_S)
        task.cancel()
        await asyncio.wait({task}, timeout=HANGUP_WAIT_S)


CALLS = web.AppKey("calls", CallRegistry)
MODEL_FACTORY = web.AppKey("model_factory", ModelFactory)


# routes -----------------------------------------------------------------------------------------------
def error_response(exc: VoicebotError) -> web.Response:
    body = {"error": {"message": exc.message, "code": exc.code, "param": exc.param}}
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, CapacityError) else None
    return web.json_response(body, status=exc.http_status, headers=headers)


async def get_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    servers = [s.model_dump(exclude_none=True) for s in settings.ice_servers]
    return web.json_response({"ice_servers": servers, "max_calls": settings.max_calls})


async def list_calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": [a.describe() for a in request.app[CALLS].all()]})


async def delete_call(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    if not await request.app[CALLS].hang_up(call_id):
        body = {"error": {"message": f"no call {call_id!r}", "code": "call_not_found", "param": None}}
        return web.json_response(body, status=404)
    return web.Response(status=204)


async def post_call(request: web.Request) -> web.Response:
    try:
        return await _post_call(request)
    except VoicebotError as exc:
        return error_response(exc)


async def _read_options(request: web.Request) -> tuple[str, OfferInfo, bool]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest('the body must be JSON: {"sdp": ..., "type": "offer"}') from exc
    sdp, info = parse_offer(body)
    phone_quality = body.get("phone_quality", False)
    if not isinstance(phone_quality, bool):
        raise BadRequest("'phone_quality' must be true or false", param="phone_quality")
    agent = body.get("agent")
    if agent is not None and not isinstance(agent, str):
        raise BadRequest("'agent' must be a string", param="agent")
    return sdp, info, phone_quality


async def _post_call(request: web.Request) -> web.Response:
    sdp, info, phone_quality = await _read_options(request)
    registry = request.app[CALLS]
    registry.reserve()
    try:
        active, answer = await _open_call(request, sdp, info, phone_quality)
    except BaseException:
        registry.release()
        raise
    registry.start(active, sessions.run_call(request.app, active.call))
    log.info(
        "call %s: answered %s (codec %s, %d in progress)",
        active.call.call_id,
        active.call.caller,
        active.port.codec,
        len(registry),
    )
    return web.json_response({"sdp": answer, "type": "answer", "call_id": active.call.call_id}, status=201)


async def _open_call(
    request: web.Request, sdp: str, info: OfferInfo, phone_quality: bool
) -> tuple[ActiveCall, str]:
    app = request.app
    settings = app[SETTINGS]
    caller = f"webrtc:{request.remote or 'unknown'}"
    model, tools = await _start_model(app, caller=caller, phone_quality=phone_quality)
    try:
        port, answer = await answer_offer(
            sdp,
            info,
            ice_servers=settings.ice_servers,
            phone_quality=phone_quality,
            output_rate=model.output_rate,
            connect_timeout_s=settings.webrtc_connect_timeout_s,
        )
    except BaseException:
        await _close_quietly(model)
        raise
    relay = EventRelay(port.send_event)
    model.on_tool_result = relay.on_tool_result
    call = Call(port, model, caller=caller, tools=tools)
    call.add_listener(relay.on_model_event)
    port.on_item_change(relay.on_item_change)
    port.on_close = lambda: relay.ended(call.stats.end_reason or "hung up")
    relay.started(call.call_id, codec=port.codec, phone_quality=phone_quality)
    return ActiveCall(call, port, relay, phone_quality), answer


async def _start_model(
    app: web.Application, *, caller: str, phone_quality: bool
) -> tuple[ObservedModel, ToolExecutor | None]:
    """Create and start the model side before answering, so an unreachable upstream is an HTTP error."""
    factory = app.get(MODEL_FACTORY) or sessions_factory
    inner, tools = factory(app, caller=caller, phone_quality=phone_quality)
    model = ObservedModel(inner)
    try:
        await model.start()
    except VoicebotError:
        await _close_quietly(model)
        raise
    except Exception as exc:
        await _close_quietly(model)
        log.warning("model upstream unavailable: %r", exc)
        raise UpstreamError(
            f"the model upstream is unavailable ({exc})", code="upstream_unavailable"
        ) from exc
    return model, tools


async def _close_quietly(model: ModelSession) -> None:
    try:
        await model.close()
    except Exception:
        log.debug("closing a model that failed to start", exc_info=True)


def sessions_factory(
    app: web.Application, *, caller: str, phone_quality: bool = False
) -> tuple[ModelSession, ToolExecutor | None]:
    """The app's agent as a Realtime session (``voicebot.server.sessions``), with a tool runner per call.

    Phone quality puts the model leg on G.711 µ-law too, so the whole call sounds like a phone call.
    """

    runner = sessions.create_tool_runner(app)
    model = sessions.create_model_session(
        app, caller=caller, audio_format="audio/pcmu" if phone_quality else "audio/pcm", runner=runner
    )
    return model, runner


# the page -------------------------------------------------------------------------------------------
def web_root() -> Path | None:
    """The demo page's folder, ``voicebot/web`` (shipped inside the package, so an installed wheel has it)."""
    root = Path(__file__).resolve().parents[1] / "web"
    return root if (root / "index.html").is_file() else None


async def index(request: web.Request) -> web.StreamResponse:
    root = web_root()
    if root is None:
        raise web.HTTPNotFound(text="the demo page is not installed")
    return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})


# wiring ---------------------------------------------------------------------------------------------
async def _calls_lifetime(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    undo: Callable[[], None] | None = None
    if settings.ice_host_addresses is not None:
        undo = restrict_host_addresses(settings.ice_host_addresses)
    app[CALLS] = CallRegistry(app[CALL_SLOTS])
    try:
        yield
    finally:
        await app[CALLS].close_all()
        if undo is not None:
            undo()


async def _hang_up_all(app: web.Application) -> None:
    # on_shutdown runs before the server drops its connections, so every call still has its upstream
    # (a WebSocket to the local engine, say) while it says goodbye.
    if CALLS in app:
        await app[CALLS].close_all()


def setup_call_routes(app: web.Application) -> None:
    """Register the call routes, the demo page and the registry's lifetime on ``app``."""
    if CALL_SLOTS not in app:
        app[CALL_SLOTS] = CallSlots(app[SETTINGS].max_calls)
    app.cleanup_ctx.append(_calls_lifetime)
    app.on_shutdown.append(_hang_up_all)
    app.router.add_get("/api/config", get_config)
    app.router.add_post("/api/calls", post_call)
    app.router.add_get("/api/calls", list_calls)
    app.router.add_delete("/api/calls/{call_id}", delete_call)
    app.router.add_get("/", index)
    root = web_root()
    if root is not None:
        app.router.add_static("/static/", root, append_version=False)
