"""sipp against the bot: OPTIONS, unknown methods, CANCEL while ringing, hold/resume, lost ACKs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sip_e2e.capture import RtpCapture, capture_unavailable
from tests.sip_e2e.conftest import Bot, BotFactory
from tests.sip_e2e.sipp import SIPP, free_even_udp_port, run_sipp, scenario
from voicebot.sip.message import SipResponse, parse_message

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.skipif(SIPP is None, reason="sipp is not installed (Debian package sip-tester)"),
]


async def wait_idle(bot: Bot, limit_s: float = 5.0) -> None:
    """Until no call is in progress and every RTP port is back in the pool."""
    async with asyncio.timeout(limit_s):
        while bot.service.legs or bot.service.pool.in_use:
            await asyncio.sleep(0.02)


async def test_options_gets_200_with_to_tag_and_allow(bot: Bot, tmp_path: Path) -> None:
    result = await run_sipp(
        scenario("options.xml", tmp_path), bot.sip_address, cwd=tmp_path, keys={"ua": "sipp-test"}
    )
    assert result.rc == 0, result.explain()


async def test_scanner_user_agent_is_dropped_silently(bot: Bot, tmp_path: Path) -> None:
    result = await run_sipp(
        scenario("options.xml", tmp_path),
        bot.sip_address,
        cwd=tmp_path,
        keys={"ua": "friendly-scanner"},
        limit_s=3,
    )
    assert result.rc != 0, "a scanner got an answer"
    assert bot.service.endpoint.stats["drop_scanner"] >= 1


async def test_unknown_method_gets_501(bot: Bot, tmp_path: Path) -> None:
    result = await run_sipp(scenario("unknown_method.xml", tmp_path), bot.sip_address, cwd=tmp_path)
    assert result.rc == 0, result.explain()


async def test_cancel_while_ringing(make_bot: BotFactory, tmp_path: Path) -> None:
    bot = await make_bot(sip_answer_delay_s=3.0)
    result = await run_sipp(
        scenario("uac_cancel.xml", tmp_path, codecs="0 8"),
        bot.sip_address,
        cwd=tmp_path,
        media_port=free_even_udp_port(),
    )
    assert result.rc == 0, result.explain()
    await wait_idle(bot)
    (record,) = bot.service.finished
    assert not record.answered
    assert record.end_reason == "cancelled"


@pytest.mark.skipif(capture_unavailable() is not None, reason=str(capture_unavailable()))
async def test_hold_stops_media_and_resume_restarts_it(bot: Bot, tmp_path: Path) -> None:
    media = free_even_udp_port()
    xml = scenario("uac_hold.xml", tmp_path, codecs="0 8", talk_ms=1000, hold_ms=2000)
    async with RtpCapture(media) as cap:
        result = await run_sipp(xml, bot.sip_address, cwd=tmp_path, media_port=media)
    assert result.rc == 0, result.explain()  # includes: the hold answer said a=recvonly, the resume sendrecv
    times = [c.at for c in cap.packets]
    assert len(times) > 60, f"only {len(times)} RTP packets from the bot"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    longest = max(gaps)
    split = gaps.index(longest)
    assert 1.5 < longest < 3.0, f"longest silence of the bot's RTP: {longest:.3f} s (hold lasted 2 s)"
    assert split >= 30 and len(times) - split >= 30, "media before the hold and after the resume"
    await wait_idle(bot)
    assert bot.service.finished[-1].end_reason == "remote_bye"


class AckDropper(asyncio.DatagramProtocol):
    """A UDP relay between sipp and the bot that loses the first ``drop`` ACKs."""

    def __init__(self, bot: tuple[str, int], drop: int) -> None:
        self.bot = bot
        self.drop = drop
        self.dropped = 0
        self.invite_oks = 0
        self.sipp: tuple[str, int] | None = None
        self.front: asyncio.BaseTransport | None = None
        self.back: asyncio.BaseTransport | None = None

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self.front, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self.from_sipp), local_addr=("127.0.0.1", 0)
        )
        self.back, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self.from_bot), local_addr=("127.0.0.1", 0)
        )
        host, port = self.front.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def close(self) -> None:
        for t in (self.front, self.back):
            if t is not None:
                t.close()

    def from_sipp(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sipp = addr
        if data.startswith(b"ACK ") and self.dropped < self.drop:
            self.dropped += 1
            return
        assert self.back is not None
        self.back.sendto(data, self.bot)  # type: ignore[attr-defined]

    def from_bot(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse_message(data)
        if isinstance(msg, SipResponse) and msg.status == 200 and msg.cseq[1] == "INVITE":
            self.invite_oks += 1
        if self.sipp is not None and self.front is not None:
            self.front.sendto(data, self.sipp)  # type: ignore[attr-defined]


class _Side(asyncio.DatagramProtocol):
    def __init__(self, handler: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.handler(data, (str(addr[0]), int(addr[1])))


async def test_200_is_retransmitted_until_the_ack_arrives(bot: Bot, tmp_path: Path) -> None:
    relay = AckDropper(bot.sip_address, drop=2)
    front = await relay.start()
    try:
        result = await run_sipp(
            scenario("uac_call.xml", tmp_path, codecs="0 8", media="", talk_ms=3000),
            front,
            cwd=tmp_path,
            media_port=free_even_udp_port(),
        )
    finally:
        relay.close()
    assert result.rc == 0, result.explain()
    assert relay.dropped == 2
    assert relay.invite_oks >= 3, f"the bot sent its 200 {relay.invite_oks} times"
    await wait_idle(bot)
    record = bot.service.finished[-1]
    assert record.answered and record.end_reason == "remote_bye"
    assert record.codec == "PCMU", "the third ACK confirmed the call and media started"
    assert record.rtp_stats["sent"] > 50
