"""Classification of Realtime ``error`` events (pure).

The Realtime server reports problems in-band as ``{"type": "error", "error": {type, code, message, ...}}``.
Most of them leave the session usable. This table decides what the call should make of each one:

=================  ==========================================================================================
kind               meaning and codes
=================  ==========================================================================================
``BENIGN``         harmless races the client provokes by design and can ignore:
                   ``response_cancel_not_active`` (a cancel raced the natural end of a response),
                   ``conversation_already_has_active_response`` (a ``response.create`` raced a VAD response),
                   ``input_audio_buffer_commit_empty`` (a commit after VAD already took the buffer)
``RETRYABLE``      the upstream is busy or broken for now: error ``type`` ``server_error`` (any code),
                   ``rate_limit_exceeded``, ``rate_limit_error``, ``session_expired`` (beta-era cap),
                   ``server_is_overloaded``, ``internal_error``
``FATAL``          this upstream cannot serve the call at all: ``invalid_api_key``, ``insufficient_quota``,
                   ``beta_api_shape_disabled``, ``model_not_found``, ``account_deactivated``,
                   ``billing_hard_limit_reached``, ``unsupported_country_region_territory``, and
                   error ``type`` ``authentication_error`` / ``permission_error`` (any code)
``INVALID``        everything else, in particular other ``invalid_request_error`` codes
                   (``unknown_parameter``, ``invalid_value``, ``missing_required_parameter``, the truncate
                   "Audio content of X ms is already shorter than Y ms" message, ...): we sent something the
                   server refused; the session goes on
=================  ==========================================================================================

Codes are checked before types, so ``insufficient_quota`` is fatal whatever ``type`` carries it.
"""

from __future__ import annotations

from collections.abc import Mapping

from voicebot.events import ErrorKind, ModelError

BENIGN_CODES = frozenset(
    {
        "response_cancel_not_active",
        "conversation_already_has_active_response",
        "input_audio_buffer_commit_empty",
    }
)

RETRYABLE_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "rate_limit_error",
        "session_expired",
        "server_is_overloaded",
        "internal_error",
    }
)

FATAL_CODES = frozenset(
    {
        "invalid_api_key",
        "insufficient_quota",
        "beta_api_shape_disabled",
        "model_not_found",
        "account_deactivated",
        "billing_hard_limit_reached",
        "unsupported_country_region_territory",
    }
)

RETRYABLE_TYPES = frozenset({"server_error", "rate_limit_error", "rate_limit_exceeded"})
FATAL_TYPES = frozenset({"authentication_error", "permission_error", "insufficient_quota"})


def classify(error_type: str | None, code: str | None) -> ErrorKind:
    """The kind of a Realtime error, from its ``error.type`` and ``error.code`` (either may be missing)."""
    if code in BENIGN_CODES:
        return ErrorKind.BENIGN
    if code in FATAL_CODES:
        return ErrorKind.FATAL
    if code in RETRYABLE_CODES:
        return ErrorKind.RETRYABLE
    if error_type in FATAL_TYPES:
        return ErrorKind.FATAL
    if error_type in RETRYABLE_TYPES:
        return ErrorKind.RETRYABLE
    return ErrorKind.INVALID


def model_error_from_event(event: Mapping[str, object]) -> ModelError:
    """A ``ModelError`` from a server ``error`` event (tolerates a missing or malformed ``error`` body)."""
    body = event.get("error")
    err: Mapping[str, object] = body if isinstance(body, Mapping) else {}
    etype = err.get("type")
    code = err.get("code")
    message = err.get("message")
    etype_s = etype if isinstance(etype, str) else None
    code_s = code if isinstance(code, str) else None
    message_s = message if isinstance(message, str) else "(no message)"
    return ModelError(classify(etype_s, code_s), code_s or etype_s, message_s)
