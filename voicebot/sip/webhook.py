"""OpenAI-native SIP: verify and read the ``realtime.call.incoming`` webhook (pure).

OpenAI signs webhooks the Standard Webhooks way: headers ``webhook-id``, ``webhook-timestamp`` (unix
seconds) and ``webhook-signature`` (one or more space-separated ``v1,<base64 sig>``). The signature is
base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{raw body}")), where the secret is the base64 text after the
``whsec_`` prefix. A timestamp more than ``tolerance_s`` away from ``now`` is refused (replays).

``verify_webhook`` raises ``WebhookError`` (HTTP 400) on anything wrong; ``sign_webhook`` builds the headers
(for the local engine's emulated sender and for tests); ``parse_incoming_call`` reads the event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voicebot.errors import BadRequest

DEFAULT_TOLERANCE_S = 300


class WebhookError(BadRequest):
    code = "invalid_webhook"


def _secret_bytes(secret: str) -> bytes:
    text = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError("the webhook secret is not base64 (after the whsec_ prefix)") from None


def _signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign_webhook(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers a sender puts on ``body``."""
    sig = _signature(_secret_bytes(secret), webhook_id, str(timestamp), body)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{sig}"}


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Raise ``WebhookError`` unless one ``v1`` signature matches and the timestamp is fresh."""
    lower = {k.lower(): v for k, v in headers.items()}
    webhook_id = lower.get("webhook-id", "")
    timestamp = lower.get("webhook-timestamp", "")
    signatures = lower.get("webhook-signature", "")
    if not webhook_id or not timestamp or not signatures:
        raise WebhookError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise WebhookError("webhook-timestamp is not unix seconds")
    if abs(now - int(timestamp)) > tolerance_s:
        raise WebhookError("webhook timestamp is too old or too new")
    expected = _signature(_secret_bytes(secret), webhook_id, timestamp, body)
    for candidate in signatures.split():
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return
    raise WebhookError("no webhook signature matches")


@dataclass(frozen=True, slots=True)
class IncomingSipCall:
    """``realtime.call.incoming``: OpenAI has a SIP call waiting for accept/reject."""

    event_id: str
    call_id: str
    sip_headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.sip_headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def caller(self) -> str:
        return self.header("From") or "unknown"


def parse_event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError("the webhook body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise WebhookError("the webhook body is not an event object")
    return event


def parse_incoming_call(event: Mapping[str, Any]) -> IncomingSipCall:
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("call_id"), str) or not data["call_id"]:
        raise WebhookError("realtime.call.incoming without data.call_id")
    headers: list[tuple[str, str]] = []
    for h in data.get("sip_headers") or []:
        if isinstance(h, dict) and isinstance(h.get("name"), str) and isinstance(h.get("value"), str):
            headers.append((h["name"], h["value"]))
    return IncomingSipCall(str(event.get("id", "")), data["call_id"], tuple(headers))
