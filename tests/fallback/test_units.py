"""The cascade's pure parts: turn detection, sentence cutting, the history and barge-in truncation."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.audio.chunk import PcmChunk
from voicebot.fallback.history import History, Spoken, heard_text
from voicebot.fallback.sentences import SentenceSplitter
from voicebot.fallback.turns import SpeechBegan, TurnDetector, TurnOver
from voicebot.realtime.conversation import Item

RATE = 16000


def frame(value: int, ms: int = 20) -> PcmChunk:
    return PcmChunk(np.full(RATE * ms // 1000, value, dtype=np.int16), RATE)


def run(detector: TurnDetector, pattern: list[tuple[float, int, int]]) -> list[object]:
    """Feed ``count`` 20 ms frames of ``value`` with speech probability ``prob`` per (prob, value, count)."""
    events: list[object] = []
    for prob, value, count in pattern:
        for _ in range(count):
            events += detector.push(frame(value), prob)
    return events


# turn detection -------------------------------------------------------------------------------------------


def test_turn_ends_after_500_ms_of_silence_with_the_prefix_included() -> None:
    d = TurnDetector(RATE, silence_ms=500, min_speech_ms=100, prefix_ms=300)
    events = run(d, [(0.0, 1, 30), (0.9, 2, 50), (0.0, 3, 24)])
    assert events == [SpeechBegan(600.0)]  # 24 silent frames = 480 ms: not over yet
    over = d.push(frame(3), 0.0)
    assert len(over) == 1 and isinstance(over[0], TurnOver) and not over[0].forced
    audio = over[0].audio.samples
    # 300 ms of prefix (value 1), 1000 ms of speech (value 2), 500 ms of trailing silence (value 3)
    assert (audio == 1).sum() == RATE * 300 // 1000
    assert (audio == 2).sum() == RATE
    assert (audio == 3).sum() == RATE // 2
    assert not d.speaking


def test_short_blips_and_pauses_inside_speech_do_not_make_turns() -> None:
    d = TurnDetector(RATE, silence_ms=500, min_speech_ms=100)
    assert run(d, [(0.9, 2, 4), (0.0, 1, 10)]) == []  # 80 ms of "speech": a click
    events = run(d, [(0.9, 2, 10), (0.1, 1, 20), (0.9, 2, 10), (0.1, 1, 20)])
    assert [type(e) for e in events] == [SpeechBegan]  # 400 ms pauses keep the turn open
    assert d.speaking


def test_hysteresis_and_a_forced_end_for_endless_speech() -> None:
    d = TurnDetector(RATE, threshold=0.5, release=0.35, silence_ms=200, max_utterance_ms=1000)
    events = run(d, [(0.9, 2, 10), (0.4, 2, 20)])  # 0.4 is below threshold but not below release
    assert [type(e) for e in events] == [SpeechBegan]
    over = run(d, [(0.9, 2, 40)])
    assert isinstance(over[0], TurnOver) and over[0].forced
    assert over[0].audio.duration_ms == pytest.approx(1000, abs=20)
    assert [type(e) for e in over[1:]] == [SpeechBegan]  # the speech goes on: a new turn starts


def test_turn_detector_rejects_bad_settings_and_rates() -> None:
    with pytest.raises(ValueError):
        TurnDetector(RATE, threshold=0.3, release=0.5)
    with pytest.raises(ValueError):
        TurnDetector(RATE).push(PcmChunk.silence(20, 8000), 0.0)


# sentences -----------------------------------------------------------------------------------------------


def test_sentences_come_out_as_soon_as_they_are_complete() -> None:
    s = SentenceSplitter()
    assert s.push("It is 18 degr") == []
    assert s.push("ees in Paris. Tomorrow") == ["It is 18 degrees in Paris."]
    assert s.push(" looks sunny!\nAnything") == ["Tomorrow looks sunny!"]
    assert s.push(" else?") == []  # no white space after the stop yet: maybe "else?!" follows
    assert s.flush() == "Anything else?"
    assert s.flush() is None


def test_a_run_on_sentence_is_cut_at_a_comma_or_space() -> None:
    s = SentenceSplitter(max_chars=40)
    out = s.push("one two three four five six, seven eight nine ten eleven twelve thirteen")
    assert out == ["one two three four five six,", "seven eight nine ten eleven twelve"]
    assert s.pending == "thirteen"


# history -------------------------------------------------------------------------------------------------


def test_input_pairs_calls_with_outputs_and_places_outputs_after_their_call() -> None:
    h = History()
    h.add_message("u1", "user", "Weather in Paris and London?")
    h.add_call("c1", "call_a", "get_weather", '{"city": "Paris"}')
    h.add_call("c2", "call_b", "get_weather", '{"city": "London"}')
    h.add_message("u2", "user", "Hurry up please")  # spoken while the tools ran
    assert [i.get("call_id") for i in h.to_input() if "call_id" in i] == []  # no outputs yet: no calls
    h.add_output("o2", "call_b", "14")
    h.add_output("o1", "call_a", "18")
    kinds = [(i["type"], i.get("call_id")) for i in h.to_input()]
    assert kinds == [
        ("message", None),
        ("function_call", "call_a"),
        ("function_call", "call_b"),
        ("function_call_output", "call_b"),
        ("function_call_output", "call_a"),
        ("message", None),
    ]
    assert h.open_calls() == [] and h.awaiting_answer()


def test_awaiting_answer_ignores_fillers_and_empty_messages() -> None:
    h = History()
    assert not h.awaiting_answer()
    h.add_message("u1", "user", "Hello")
    filler = h.add_message("a0", "assistant", "One moment.")
    filler.aside = True
    h.add_message("a1", "assistant", "")
    assert h.awaiting_answer()
    assert [i["content"] for i in h.to_input()] == ["Hello"]
    h.add_message("a2", "assistant", "Hi!")
    assert not h.awaiting_answer()


def test_heard_text_cuts_at_a_word_boundary_inside_the_piece_being_played() -> None:
    spoken = [Spoken("It is 18 degrees in Paris.", 2000.0), Spoken("Tomorrow looks sunny and warm.", 2000.0)]
    assert heard_text(spoken, 0) == ""
    assert heard_text(spoken, 1990) == "It is 18 degrees in Paris."  # within a frame of the end
    assert heard_text(spoken, 3000) == "It is 18 degrees in Paris. Tomorrow looks"
    assert heard_text(spoken, 10_000) == "It is 18 degrees in Paris. Tomorrow looks sunny and warm."
    assert heard_text([Spoken("Not synthesized yet.", 0.0)], 500) == ""


def test_conversion_to_and_from_realtime_conversation_items() -> None:
    items = [
        Item(id="i1", type="message", role="user", text="Weather in Paris?"),
        Item(
            id="i2", type="function_call", call_id="call_1", name="get_weather", arguments='{"city":"Paris"}'
        ),
        Item(id="i3", type="message", role="assistant", text=""),  # audio only, no transcript: skipped
        Item(id="i4", type="function_call", call_id="call_2", name="get_time", arguments="{}"),
    ]
    h = History.from_conversation(items, outputs={"call_1": "18", "call_9": "stray"})
    # the output goes after the run of calls it belongs to; the unanswered call stays open
    assert [(i.kind, i.call_id) for i in h] == [
        ("message", None),
        ("function_call", "call_1"),
        ("function_call", "call_2"),
        ("function_call_output", "call_1"),
    ]
    assert h.open_calls() == ["call_2"]
    assert [i["type"] for i in h.to_input()] == ["message", "function_call", "function_call_output"]
    back = h.to_conversation()
    assert [b.replay_payload() for b in back] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18"},
    ]
    version = h.version
    h.touch()
    assert h.version == version + 1
