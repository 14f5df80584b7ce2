"""The local engine's emulation of OpenAI-native SIP call control, plus the webhook sender.

Routes (the engine app is mounted under ``/v1``)::

    POST /realtime/calls/{call_id}/accept   session config (JSON)  → 200 empty; 404 call_id_not_found
    POST /realtime/calls/{call_id}/reject   {"status_code"?: int}   → 200
    POST /realtime/calls/{call_id}/refer    {"target_uri": str}     → 200
    POST /realtime/calls/{call_id}/hangup                           → 200

A call exists once ``ring(app, call_id, ...)`` announced it (as OpenAI's SIP edge would), and
``send_incoming_call(...)`` POSTs the signed ``realtime.call.incoming`` webhook for it to a voicebot server.
Wire it with ``register_sip_call_routes(app)`` before the app starts.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from voicebot.sip.webhook import sign_webhook


@dataclass
class EmulatedSipCall:
    call_id: str
    sip_headers: list[dict[str, str]]
    state: str = "ringing"  # ringing | accepted | rejected | hung_up
    session: dict[str, Any] = field(default_factory=dict)
    reject_status: int | None = None
    refer_targets: list[str] = field(default_factory=list)


SIP_CALLS: web.AppKey[dict[str, EmulatedSipCall]] = web.AppKey("engine_sip_calls")


def _not_found(call_id: str) -> web.Response:
    body = {
        "error": {
            "message": f"Call '{call_id}' not found",
            "type": "invalid_request_error",
            "param": None,
            "code": "call_id_not_found",
        }
    }
    return web.json_response(body, status=404)


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='{"error": {"message": "body must be JSON"}}') from None
    return data if isinstance(data, dict) else {}


async def control(request: web.Request) -> web.Response:
    call_id, action = request.match_info["call_id"], request.match_info["action"]
    call = request.app[SIP_CALLS].get(call_id)
    if call is None or call.state in ("rejected", "hung_up"):
        return _not_found(call_id)
    body = await _json(request)
    if action == "accept":
        if call.state != "ringing" or body.get("type") != "realtime":
            return _not_found(call_id) if call.state != "ringing" else _bad("type must be 'realtime'")
        call.state, call.session = "accepted", body
    elif action == "reject":
        if call.state != "ringing":
            return _not_found(call_id)
        status = body.get("status_code", 603)
        if not isinstance(status, int) or not 400 <= status <= 699:
            return _bad("status_code must be a SIP status 400-699")
        call.state, call.reject_status = "rejected", status
    elif action == "refer":
        target = body.get("target_uri")
        if call.state != "accepted" or not isinstance(target, str) or not target.startswith(("sip:", "tel:")):
            return _bad("target_uri must be a sip: or tel: URI of an accepted call")
        call.refer_targets.append(target)
    else:
        call.state = "hung_up"
    return web.Response(status=200)


def _bad(message: str) -> web.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    return web.json_response(body, status=400)


def register_sip_call_routes(app: web.Application) -> None:
    """Add the call-control routes (and the call table) to the engine app."""
    app[SIP_CALLS] = {}
    app.router.add_post(r"/realtime/calls/{call_id}/{action:accept|reject|refer|hangup}", control)


def ring(
    app: web.Application, call_id: str | None = None, *, caller: str = "sip:+15550100@trunk.test"
) -> str:
    """Announce an incoming SIP call (as OpenAI's SIP edge does before the webhook); returns its id."""
    call_id = call_id or f"rtc_{secrets.token_hex(16)}"
    headers = [
        {"name": "From", "value": f"<{caller}>;tag=emu"},
        {"name": "To", "value": "<sip:proj_local@sip.api.openai.com>"},
        {"name": "Call-ID", "value": secrets.token_hex(8)},
    ]
    app[SIP_CALLS][call_id] = EmulatedSipCall(call_id, headers)
    return call_id


def incoming_call_event(call: EmulatedSipCall) -> dict[str, Any]:
    return {
        "object": "event",
        "id": f"evt_{secrets.token_hex(12)}",
        "type": "realtime.call.incoming",
        "created_at": int(time.time()),
        "data": {"call_id": call.call_id, "sip_headers": call.sip_headers},
    }


async def send_incoming_call(
    http: aiohttp.ClientSession,
    url: str,
    secret: str,
    call: EmulatedSipCall,
    *,
    timestamp: int | None = None,
) -> int:
    """POST the signed ``realtime.call.incoming`` webhook for ``call`` to ``url``; returns the HTTP status."""
    body = json.dumps(incoming_call_event(call)).encode()
    headers = sign_webhook(secret, f"wh_{secrets.token_hex(12)}", timestamp or int(time.time()), body)
    headers["Content-Type"] = "application/json"
    headers["User-Agent"] = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status
