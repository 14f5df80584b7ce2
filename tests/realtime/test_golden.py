"""Golden event logs (tests/data/realtime/*.jsonl) driven through the client core.

Every server frame in the logs must validate against the SDK's ``RealtimeServerEvent`` union, every frame the
core sends against ``RealtimeClientEvent`` (with no unknown fields), and the core's frames and model events
must equal the logs' expectations exactly, line by line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.realtime.helpers import (
    GOLDEN,
    load_golden,
    run_golden,
    validate_client_event,
    validate_server_event,
)

NAMES = sorted(p.stem for p in GOLDEN.glob("*.jsonl"))


def test_the_expected_logs_exist() -> None:
    assert set(NAMES) >= {
        "voice_turn",
        "tool_calls",
        "barge_in_generating",
        "barge_in_playing",
        "reconnect",
        "errors",
        "beta_shape",
    }


@pytest.mark.parametrize("name", NAMES)
def test_server_frames_validate_against_the_sdk(name: str) -> None:
    frames = [line["event"] for line in load_golden(name) if line["dir"] == "server"]
    assert frames
    for frame in frames:
        # $placeholders stand for ids the client chose; any string validates the same way
        validate_server_event(frame)
        assert isinstance(frame["event_id"], str)


@pytest.mark.parametrize("name", NAMES)
def test_expected_client_frames_are_valid_ga_events(name: str) -> None:
    for line in load_golden(name):
        if line["dir"] == "client":
            validate_client_event(line["event"])


@pytest.mark.parametrize("name", NAMES)
def test_core_follows_the_log(name: str) -> None:
    _, frames, events = run_golden(name)
    assert frames >= 1
    assert events >= 1


def test_voice_turn_records_expiry_and_transcripts() -> None:
    core, _, _ = run_golden("voice_turn")
    assert core.expires_at == 1767225600
    texts = [(item.role, item.text) for item in core.conversation]
    assert texts == [("user", "What's the weather like today?"), ("assistant", "It's sunny and warm.")]
    assert core.at_turn_boundary


def test_errors_log_ends_the_session() -> None:
    core, _, _ = run_golden("errors")
    assert core.ended
    assert core.messages_to_send() == []


def test_reconnect_keeps_a_sane_id_mapping() -> None:
    core, _, _ = run_golden("reconnect")
    ids = core.conversation.ids()
    assert len(ids) == 8  # 6 replayed (one of them rewritten after the truncate) + user turn + answer
    # the old assistant id of the lost answer resolves to its rewritten replacement
    assert core.resolve_item_id("item_J8hI9jK0lM1nO2pQ3rS4t") in ids
    rewritten = core.conversation.get(core.resolve_item_id("item_J8hI9jK0lM1nO2pQ3rS4t"))
    assert rewritten is not None and rewritten.text == "Your table is"


def test_beta_shape_error_ends_the_session() -> None:
    core, _, _ = run_golden("beta_shape")
    assert core.ended
    core.connection_opened()
    assert core.messages_to_send() == []


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("barge_in_generating", lambda e: e.update(audio_end_ms=201) if "audio_end_ms" in e else None),
        ("tool_calls", lambda e: e.update(call_id="call_other") if e.get("type") == "ToolCall" else None),
        (
            "voice_turn",
            lambda e: e.update(audio="AAAA") if e.get("type") == "input_audio_buffer.append" else None,
        ),
    ],
)
def test_a_wrong_expectation_fails(name: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    lines = load_golden(name)
    for line in lines:
        if line["dir"] in ("client", "model"):
            mutate(line["event"])
    with pytest.raises(AssertionError):
        run_golden(name, lines)
