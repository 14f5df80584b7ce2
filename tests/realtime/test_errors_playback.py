"""The error classification table and the playout ledger."""

from __future__ import annotations

import pytest

from voicebot.events import ErrorKind, ModelError
from voicebot.realtime.errors import classify, model_error_from_event
from voicebot.realtime.playback import PlayoutLedger


@pytest.mark.parametrize(
    ("error_type", "code", "kind"),
    [
        ("invalid_request_error", "response_cancel_not_active", ErrorKind.BENIGN),
        ("invalid_request_error", "conversation_already_has_active_response", ErrorKind.BENIGN),
        ("invalid_request_error", "input_audio_buffer_commit_empty", ErrorKind.BENIGN),
        ("server_error", None, ErrorKind.RETRYABLE),
        ("server_error", "something_new", ErrorKind.RETRYABLE),
        ("invalid_request_error", "rate_limit_exceeded", ErrorKind.RETRYABLE),
        ("invalid_request_error", "invalid_api_key", ErrorKind.FATAL),
        ("insufficient_quota", "insufficient_quota", ErrorKind.FATAL),
        ("invalid_request_error", "beta_api_shape_disabled", ErrorKind.FATAL),
        ("invalid_request_error", "model_not_found", ErrorKind.FATAL),
        ("authentication_error", None, ErrorKind.FATAL),
        ("invalid_request_error", "unknown_parameter", ErrorKind.INVALID),
        ("invalid_request_error", None, ErrorKind.INVALID),
        (None, None, ErrorKind.INVALID),
    ],
)
def test_classification_table(error_type: str | None, code: str | None, kind: ErrorKind) -> None:
    assert classify(error_type, code) is kind


def test_model_error_tolerates_a_malformed_body() -> None:
    assert model_error_from_event({"type": "error"}) == ModelError(ErrorKind.INVALID, None, "(no message)")
    truncate = {
        "type": "invalid_request_error",
        "code": None,
        "message": "Audio content of 9800ms is already shorter than 11579ms",
    }
    err = model_error_from_event({"type": "error", "error": truncate})
    assert err == ModelError(ErrorKind.INVALID, "invalid_request_error", str(truncate["message"]))


def test_ledger_counts_played_audio_exactly_and_floors() -> None:
    ledger = PlayoutLedger()
    ledger.queued("a", 960, 48_000)  # 20 ms
    ledger.queued("a", 160, 8_000)  # 20 ms
    ledger.played("a", 959, 48_000)  # 19.979 ms
    assert ledger.played_ms("a") == 19
    ledger.played("a", 1, 48_000)
    assert ledger.played_ms("a") == 20
    assert ledger.queued_ms("a") == 20
    ledger.played("a", 80, 8_000)
    assert (ledger.played_ms("a"), ledger.queued_ms()) == (30, 10)
    assert ledger.played_ms("unknown") == 0


def test_ledger_drop_queued_keeps_what_was_played() -> None:
    ledger = PlayoutLedger()
    ledger.queued("a", 2400, 24_000)
    ledger.queued("b", 4800, 24_000)
    ledger.played("a", 1200, 24_000)
    assert ledger.drop_queued() == {"a": 50, "b": 200}
    assert ledger.queued_ms() == 0
    assert (ledger.played_ms("a"), ledger.played_ms("b")) == (50, 0)


def test_ledger_is_bounded_and_rejects_nonsense() -> None:
    ledger = PlayoutLedger(max_items=2)
    for item in ("a", "b", "c"):
        ledger.played(item, 24, 24_000)
    assert [ledger.played_ms(i) for i in ("a", "b", "c")] == [0, 1, 1]
    with pytest.raises(ValueError):
        ledger.played("a", -1, 24_000)
    with pytest.raises(ValueError):
        ledger.queued("a", 1, 0)


def test_uncommon_rates_stay_exact_next_to_common_ones() -> None:
    ledger = PlayoutLedger()
    ledger.played("item_x", 3500, 7000)  # 7 kHz does not divide the tick rate: kept as a fraction
    ledger.played("item_x", 4000, 8000)
    ledger.played("item_x", 1, 7000)  # 1/7 ms more: still under 1001 ms
    assert ledger.played_ms("item_x") == 1000
    ledger.played("item_x", 7, 7000)
    assert ledger.played_ms("item_x") == 1001
