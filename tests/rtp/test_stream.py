"""RTP stream: latching to the signalled peer only, paced sending from a fake monotonic clock, hold, DTMF."""

from __future__ import annotations

from dataclasses import replace

from voicebot.rtp.dtmf import TelephoneEvent, encode_digit
from voicebot.rtp.packet import RtpPacket
from voicebot.rtp.stream import RtpStream, StreamConfig

PEER = ("127.0.0.1", 6000)


def _stream(**kw: object) -> RtpStream:
    base = StreamConfig(
        remote=PEER, payload_type=0, ssrc=0xABCD, initial_sequence=65534, initial_timestamp=2**32 - 160
    )
    return RtpStream(replace(base, **kw))  # type: ignore[arg-type]


def _audio(seq: int, fill: int = 1, ssrc: int = 77) -> bytes:
    return RtpPacket(0, seq, seq * 160, ssrc, bytes([fill]) * 160).to_bytes()


def _sent(s: RtpStream) -> list[tuple[RtpPacket, tuple[str, int]]]:
    return [(RtpPacket.parse(d), a) for d, a in s.datagrams_to_send()]


def test_latches_to_signalled_ip_and_ignores_others() -> None:
    s = _stream()
    s.receive_datagram(_audio(1, ssrc=9), ("198.51.100.66", 6000), 0.0)  # injection attempt
    assert s.stats["foreign"] == 1 and s.peer == PEER
    s.receive_datagram(_audio(1), ("127.0.0.1", 40000), 0.0)  # NAT changed the port: latch here
    assert s.peer == ("127.0.0.1", 40000) and s.stats["latched"] == 1
    s.receive_datagram(_audio(2), ("127.0.0.1", 40001), 0.0)  # latched once: another port is foreign
    assert s.stats["foreign"] == 2
    s.receive_datagram(_audio(2), ("127.0.0.1", 40000), 0.0)
    assert [s.pop_frame().payload[0] for _ in range(2)] == [1, 1]


def test_latch_any_source_for_wrong_interface_peers() -> None:
    """Pitfall 4: baresip advertises 192.0.2.2 but sends from 127.0.0.1."""
    s = _stream(remote=("192.0.2.2", 10208), latch_any_source=True)
    s.receive_datagram(_audio(1), ("127.0.0.1", 10208), 0.0)
    assert s.peer == ("127.0.0.1", 10208)
    s.start(0.0)
    s.handle_timer(0.0)
    assert _sent(s)[0][1] == ("127.0.0.1", 10208)


def test_junk_rtcp_and_other_payloads_are_counted_not_raised() -> None:
    s = _stream()
    for data in (b"junk", b"\x81\xc9\x00\x07" + bytes(28), RtpPacket(13, 1, 1, 1, b"\x40").to_bytes()):
        s.receive_datagram(data, PEER, 0.0)
    s.receive_datagram(RtpPacket(101, 1, 1, 1, b"\x01").to_bytes(), PEER, 0.0)  # short DTMF payload
    assert (s.stats["junk"], s.stats["rtcp"], s.stats["comfort_noise"]) == (2, 1, 1)


def test_dtmf_from_rtp_becomes_events() -> None:
    s = _stream()
    for i, p in enumerate(encode_digit("7")):
        s.receive_datagram(RtpPacket(101, i, 500, 3, p.payload, p.marker).to_bytes(), PEER, 0.0)
    ev = s.next_event()
    assert ev is not None and ev.digit == "7" and s.next_event() is None


def test_schedule_is_anchored_and_wraps_seq_and_timestamp() -> None:
    s = _stream()
    assert s.next_send_time() is None
    s.start(100.0)
    s.queue_audio(bytes([5]) * 400)  # 2.5 frames: two whole frames now, the rest waits
    s.handle_timer(100.0)
    s.handle_timer(100.019)
    assert s.next_send_time() == 100.02
    s.handle_timer(100.041)
    sent = _sent(s)
    assert [p.sequence for p, _ in sent] == [65534, 65535, 0]
    assert [p.timestamp for p, _ in sent] == [2**32 - 160, 0, 160]
    assert [p.payload[0] for p, _ in sent] == [5, 5, 0xFF]  # then µ-law silence
    assert [p.marker for p, _ in sent] == [True, False, False]
    assert all(a == PEER and p.ssrc == 0xABCD for p, a in sent)


def test_no_drift_over_a_long_run_with_jittery_wakeups() -> None:
    s = _stream()
    s.start(0.0)
    now = 0.0
    for i in range(3000):  # one minute, waking 0–7 ms late every time
        now = s.next_send_time() or 0.0
        s.handle_timer(now + (i * 7919 % 8) / 1000)
    sent = _sent(s)
    assert len(sent) == 3000 and s.stats["skipped_slots"] == 0
    assert abs((s.next_send_time() or 0) - 60.0) < 1e-9  # anchored: no accumulated error
    assert (sent[-1][0].timestamp - sent[0][0].timestamp) % 2**32 == 2999 * 160


def test_far_behind_skips_slots_instead_of_bursting() -> None:
    s = _stream(max_lag_frames=5)
    s.start(0.0)
    s.handle_timer(0.0)
    s.handle_timer(1.0)  # the adapter stalled for a second
    sent = _sent(s)
    assert len(sent) == 2 and s.stats["skipped_slots"] == 49
    assert (sent[1][0].timestamp - sent[0][0].timestamp) % 2**32 == 50 * 160  # timestamps follow wall time
    assert sent[1][0].marker


def test_hold_stops_sending_and_resume_marks() -> None:
    s = _stream()
    s.start(0.0)
    s.handle_timer(0.0)
    s.set_sending(False)
    s.handle_timer(0.1)
    assert len(_sent(s)) == 1
    s.set_sending(True)
    s.handle_timer(0.12)
    ((p, _),) = _sent(s)
    assert p.marker and p.timestamp == (2**32 - 160 + 6 * 160) % 2**32


def test_clear_audio_for_barge_in() -> None:
    s = _stream()
    s.queue_audio(bytes(800))
    assert s.queued_frames == 5
    assert s.clear_audio() == 5 and s.queued_frames == 0


def test_send_dtmf_uses_one_timestamp_then_audio_resumes() -> None:
    s = _stream(dtmf_payload_type=101)
    s.start(0.0)
    s.send_dtmf("4", 60)
    for tick in range(6):
        s.handle_timer(tick * 0.02)
    sent = [p for p, _ in _sent(s)]
    dtmf = [p for p in sent if p.payload_type == 101]
    assert len(dtmf) == 5 and {p.timestamp for p in dtmf} == {sent[0].timestamp}
    assert [TelephoneEvent.parse(p.payload).end for p in dtmf] == [False, False, True, True, True]
    assert sent[5].payload_type == 0 and sent[5].timestamp == (sent[0].timestamp + 5 * 160) % 2**32
    assert [p.sequence for p in sent] == [(65534 + i) % 65536 for i in range(6)]


def test_ssrc_change_resets_the_jitter_buffer() -> None:
    s = _stream()
    s.receive_datagram(_audio(100, ssrc=1), PEER, 0.0)
    s.receive_datagram(_audio(5, fill=2, ssrc=2), PEER, 0.0)
    assert s.stats["ssrc_change"] == 1
    s.receive_datagram(_audio(6, fill=2, ssrc=2), PEER, 0.0)
    assert s.pop_frame().payload[0] == 2
