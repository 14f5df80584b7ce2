"""The local engine's HTTP error bodies, bearer check, and the middleware that applies them.

Every error the engine answers over HTTP has OpenAI's shape, so the official SDK maps it to the right
exception class (400 ``BadRequestError``, 401 ``AuthenticationError``, 404 ``NotFoundError``, ≥500
``InternalServerError``)::

    {"error": {"message": "...", "type": "invalid_request_error", "param": null, "code": null}}

Handlers raise ``ApiError`` (or any ``VoicebotError``); the middleware turns it into that body. Unknown
routes get OpenAI's "Invalid URL" 404, and an unexpected exception becomes a 500 with the same shape (logged,
never an HTML page). Every response carries ``x-request-id`` and the ``x-ratelimit-*`` headers.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from voicebot.config import Settings
from voicebot.errors import VoicebotError
from voicebot.local import keys
from voicebot.local.api_error import ApiError
from voicebot.local.faults import HttpFaults

__all__ = [
    "ApiError",
    "add_engine_headers",
    "bearer_of",
    "check_bearer",
    "engine_middleware",
    "error_body",
    "error_response",
    "read_json",
    "request_id_of",
    "with_body_limit",
]

log = logging.getLogger("voicebot.local.http")

REQUEST_ID = web.RequestKey("voicebot_request_id", str)
# Fault injection for the HTTP routes (voicebot.local.faults.HttpFaults; tests of the fallback's retries).
HTTP_FAULTS = web.AppKey("engine_http_faults", HttpFaults)
_STARTED = web.RequestKey("voicebot_request_started", float)
# The response whose headers went out (set by ``add_engine_headers``): after that, errors cannot be answered.
_PREPARED = web.RequestKey("voicebot_prepared_response", web.StreamResponse)

MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if "
    "you're accessing the API from your browser and are prompted for a username and password. You can "
    "obtain an API key from https://platform.openai.com/account/api-keys."
)
# The local engine is not rate limited; these advertise a generous fixed budget in OpenAI's header format.
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "10000000",
    "x-ratelimit-remaining-tokens": "9999000",
    "x-ratelimit-reset-tokens": "6ms",
}
_SUBPROTOCOL_KEY_PREFIX = "openai-insecure-api-key."


def error_body(
    message: str, type: str, param: str | None = None, code: str | None = None
) -> dict[str, dict[str, str | None]]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(
    status: int, message: str, type: str, param: str | None = None, code: str | None = None
) -> web.Response:
    """A JSON response with OpenAI's error body (all four keys always present)."""
    return web.json_response(error_body(message, type, param, code), status=status)


def api_error_response(exc: VoicebotError) -> web.Response:
    """The error body for any error of our tree (``ApiError`` keeps its own type and code)."""
    if isinstance(exc, ApiError):
        return error_response(exc.http_status, exc.message, exc.error_type, exc.param, exc.error_code)
    kind = "invalid_request_error" if exc.http_status < 500 else "server_error"
    code = None if exc.code == kind else exc.code  # the tree's default code is a type, not a code
    return error_response(exc.http_status, exc.message, kind, exc.param, code)


def bearer_of(request: web.Request) -> str | None:
    """The API key of a request: ``Authorization: Bearer …``, or (browser WebSockets, which cannot set
    headers) the ``openai-insecure-api-key.<KEY>`` subprotocol."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(_SUBPROTOCOL_KEY_PREFIX) and len(proto) > len(_SUBPROTOCOL_KEY_PREFIX):
            return proto[len(_SUBPROTOCOL_KEY_PREFIX) :]
    return None


def mask_key(key: str) -> str:
    """How OpenAI echoes a wrong key: a few leading and trailing characters, the rest starred."""
    if len(key) <= 8:
        return key[:2] + "*" * max(len(key) - 2, 0)
    return f"{key[:3]}{'*' * min(len(key) - 7, 20)}{key[-4:]}"


def check_bearer(request: web.Request, settings: Settings) -> web.Response | None:
    """None when the request may pass; otherwise the 401 to answer.

    A missing bearer is always refused. With ``Settings.local_token`` set, the bearer must equal it or be an
    unexpired client secret this engine issued; unset, any bearer is accepted (the SDK insists on some key).
    """
    key = bearer_of(request)
    if key is None:
        return error_response(401, MISSING_KEY_MESSAGE, "invalid_request_error")
    if settings.local_token is None or not settings.local_token.get_secret_value():
        return None
    if hmac.compare_digest(key.encode(), settings.local_token.get_secret_value().encode()):
        return None
    secrets = request.config_dict.get(keys.CLIENT_SECRETS, {})
    issued = secrets.get(key)
    if issued is not None and issued.expires_at > time.time():
        return None
    message = (
        f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return error_response(401, message, "invalid_request_error", code="invalid_api_key")


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


def request_id_of(request: web.Request) -> str:
    """This request's ``x-request-id`` (made on first use)."""
    rid = request.get(REQUEST_ID)
    if not isinstance(rid, str):
        rid = new_request_id()
        request[REQUEST_ID] = rid
    return rid


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def engine_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, route errors into OpenAI's error body, and never let an exception escape as HTML."""
    request[_STARTED] = time.monotonic()
    request_id_of(request)
    http_exc = request.match_info.http_exception
    if http_exc is not None:
        return _route_error(request, http_exc)
    denied = check_bearer(request, request.config_dict[keys.ENGINE_SETTINGS])
    if denied is not None:
        return denied
    injected = _injected_fault(request)
    if injected is not None:
        return injected
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _after_start(request) or _route_error(request, exc)
    except VoicebotError as exc:
        if exc.http_status >= 500:
            log.warning("%s %s failed: %s", request.method, request.path, exc)
        return _after_start(request) or api_error_response(exc)
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return _after_start(request) or error_response(
            500, "The server had an error while processing your request.", "server_error"
        )


def _injected_fault(request: web.Request) -> web.Response | None:
    """Fault injection (tests only): the scripted error for this request, if one is due."""
    faults = request.config_dict.get(HTTP_FAULTS)
    fault = faults.take(request.path) if faults is not None else None
    if fault is None:
        return None
    kind = fault.type or ("invalid_request_error" if fault.status < 500 else "server_error")
    log.info("fault injection: HTTP %d for %s %s", fault.status, request.method, request.path)
    response = error_response(fault.status, fault.message, kind, None, fault.code)
    if fault.retry_after is not None:
        response.headers["retry-after"] = fault.retry_after
    return response


def _after_start(request: web.Request) -> web.StreamResponse | None:
    """When the failed handler had already sent its headers (a stream, a WebSocket), no error body can follow:
    close the connection so the client sees a cut transfer, and hand back the started response."""
    started: web.StreamResponse | None = request.get(_PREPARED)
    if started is None:
        return None
    transport = request.transport
    if transport is not None:
        transport.close()
    return started


def _route_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        return error_response(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error")
    if exc.status == 405:
        return error_response(
            405, f"Invalid method for URL ({request.method} {request.path})", "invalid_request_error"
        )
    if exc.status == 413:
        return error_response(413, "The request body is too large.", "invalid_request_error")
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    return error_response(exc.status, exc.reason, kind)


async def add_engine_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response (JSON, SSE, errors, WebSocket upgrades) gets the headers."""
    request[_PREPARED] = response
    response.headers["x-request-id"] = request_id_of(request)
    for name, value in RATE_LIMIT_HEADERS.items():
        response.headers.setdefault(name, value)
    started = request.get(_STARTED)
    if isinstance(started, float):
        response.headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))


_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


MAX_BODY_BYTES = 32 * 1024 * 1024


def with_body_limit(request: web.Request, max_bytes: int = MAX_BODY_BYTES) -> web.Request:
    """The request with the engine's own body limit: a sub-app's ``client_max_size`` is not applied (the
    root app's is, 1 MiB by default), so the engine's routes raise it where they read a body."""
    return request.clone(client_max_size=max_bytes)


async def read_json(request: web.Request) -> object:
    """The request's JSON body (up to ``MAX_BODY_BYTES``), or a 400 in OpenAI's words."""
    raw = await with_body_limit(request).read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(_BAD_JSON) from None
