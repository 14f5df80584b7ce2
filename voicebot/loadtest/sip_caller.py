"""A phone call for load tests: a minimal SIP user agent client over UDP with G.711 µ-law RTP.

Why our own UAC and not sipp: a load test must say, per call, whether it was refused (``503``) or timed out,
how much of the agent's voice came back and how long each answer took. sipp plays an ``rtp_stream`` but does
not analyse the audio it receives (that needs a packet capture, hence root), and it reports failures only
as counts. This UAC does exactly one thing, which keeps it small: INVITE (retransmitted on the RFC 3261
timer A schedule until a response), ACK, RTP both ways (PCMU, 20 ms, paced on one monotonic schedule),
answer the server's BYE, or send our own BYE at the end. No authentication, no re-INVITE, no TCP/TLS. The
SIP messages are built and parsed with voicebot's pure ``voicebot.sip.message`` and ``voicebot.sip.sdp``.

Turn latency comes from RTP timing: the end of the caller's speech (the last voiced 20 ms frame sent) to the
first received packet whose audio is louder than ``LOUD_RMS``. An answer counts as finished after
``QUIET_AFTER_ANSWER_S`` of quiet packets.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import socket
from dataclasses import dataclass

import numpy as np

from voicebot.audio.g711 import alaw_decode, ulaw_decode, ulaw_encode
from voicebot.errors import BadRequest, VoicebotError
from voicebot.loadtest.common import LoadTestConfig, run_turns
from voicebot.loadtest.media import Player, Utterance
from voicebot.loadtest.report import LOUD_RMS, CallResult
from voicebot.rtp.packet import RtpPacket
from voicebot.sip.headers import parse_hostport
from voicebot.sip.message import Headers, SipRequest, SipResponse, build_response, parse_message
from voicebot.sip.sdp import parse_sdp

RATE = 8000
FRAME_S = 0.02
QUIET_AFTER_ANSWER_S = 0.8
T1 = 0.5
BYE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class SipTarget:
    uri: str
    host: str
    port: int


def check_sip_target(target: str) -> SipTarget:
    """``sip:user@host:port`` (port defaults to 5060), with a numeric host; raises ``BadRequest``."""
    if not target.startswith("sip:"):
        raise BadRequest(f"--sip-target must look like sip:bot@HOST:PORT, not {target!r}")
    hostport = target[4:].split(";", 1)[0].rsplit("@", 1)[-1]
    try:
        host, port = parse_hostport(hostport)
    except (ValueError, VoicebotError) as exc:
        raise BadRequest(f"--sip-target {target!r}: {exc}") from None
    host = host.strip("[]")
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        try:
            host = socket.gethostbyname(host)
        except OSError:
            raise BadRequest(f"--sip-target {target!r}: cannot resolve {host!r}") from None
    return SipTarget(target.split(";", 1)[0], host, port or 5060)


def _local_ip(host: str, port: int) -> str:
    """The local address that routes to ``host`` (a connected UDP socket sends nothing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        return str(s.getsockname()[0])


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class SipCaller:
    """One SIP call; ``run`` fills ``result`` and never raises for anything the server or network does."""

    def __init__(self, cfg: LoadTestConfig, result: CallResult) -> None:
        self.cfg = cfg
        self.result = result
        self.target = check_sip_target(cfg.sip_target or "")
        self.player = Player(RATE)
        self._waiting: list[asyncio.Future[None]] = []
        self._ended = False
        self._speech_end_at: float | None = None
        self._last_loud_at = 0.0
        self._answers = 0
        self._call_id = f"{secrets.token_hex(8)}@voicebot-loadtest"
        self._tag = secrets.token_hex(4)
        self._remote_tag = ""
        self._remote_uri = self.target.uri
        self._rtp_peer: tuple[str, int] | None = None
        self._cseq = 1

    # Conversation --------------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended

    def speak(self, utterance: Utterance) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.player.queue(utterance)
        self._waiting.append(fut)
        return fut

    def answer_mark(self) -> int:
        return self._answers

    def answered_since(self, mark: int) -> bool:
        quiet = asyncio.get_running_loop().time() - self._last_loud_at >= QUIET_AFTER_ANSWER_S
        return self._answers > mark and self._speech_end_at is None and quiet

    # the call ------------------------------------------------------------------------------------------
    async def run(self, utterances: list[Utterance], t0: float, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        self.result.started_at = loop.time() - t0
        self.local_ip = _local_ip(self.target.host, self.target.port)
        sip_t, self.sip = await loop.create_datagram_endpoint(_Udp, local_addr=(self.local_ip, 0))
        rtp_t, self.rtp = await loop.create_datagram_endpoint(_Udp, local_addr=(self.local_ip, 0))
        self.sip_t, self.rtp_t = sip_t, rtp_t
        tasks: list[asyncio.Task[None]] = []
        try:
            if await self._invite(stop_at):
                self.result.answered_at = loop.time() - t0
                tasks = [
                    loop.create_task(self._send_rtp()),
                    loop.create_task(self._receive_rtp()),
                    loop.create_task(self._serve_requests()),
                ]
                why = await run_turns(self, utterances, self.cfg, stop_at)
                self.result.end_reason = self.result.end_reason or why
        except Exception as exc:  # a load tester reports, it does not crash the run
            if self.result.answered:
                self.result.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                self.result.fail(f"error: {type(exc).__name__}: {exc}")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.result.answered and not self._ended:
                with contextlib.suppress(Exception):
                    await self._bye()
            sip_t.close()
            rtp_t.close()
            self.result.ended_at = loop.time() - t0

    def _headers(self, method: str, cseq: int, branch: str) -> Headers:
        sip_port = self.sip_t.get_extra_info("sockname")[1]
        to = f"<{self.target.uri}>" + (f";tag={self._remote_tag}" if self._remote_tag else "")
        return Headers(
            [
                ("Via", f"SIP/2.0/UDP {self._host()}:{sip_port};branch={branch};rport"),
                ("Max-Forwards", "70"),
                ("From", f'"loadtest" <sip:loadtest@{self._host()}:{sip_port}>;tag={self._tag}'),
                ("To", to),
                ("Call-ID", self._call_id),
                ("CSeq", f"{cseq} {method}"),
                ("Contact", f"<sip:loadtest@{self._host()}:{sip_port}>"),
                ("User-Agent", "voicebot-loadtest"),
            ]
        )

    def _host(self) -> str:
        return f"[{self.local_ip}]" if ":" in self.local_ip else self.local_ip

    def _send(self, msg: SipRequest | SipResponse, addr: tuple[str, int] | None = None) -> None:
        self.sip_t.sendto(msg.to_bytes(), addr or (self.target.host, self.target.port))

    def _offer(self) -> bytes:
        rtp_port = self.rtp_t.get_extra_info("sockname")[1]
        ip = "IP6" if ":" in self.local_ip else "IP4"
        lines = [
            "v=0",
            f"o=loadtest {random.randrange(1 << 30)} 1 IN {ip} {self.local_ip}",
            "s=voicebot loadtest",
            f"c=IN {ip} {self.local_ip}",
            "t=0 0",
            f"m=audio {rtp_port} RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=ptime:20",
            "a=sendrecv",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    async def _invite(self, stop_at: float) -> bool:
        loop = asyncio.get_running_loop()
        began = loop.time()
        until = min(stop_at, began + self.cfg.connect_timeout_s)
        branch = "z9hG4bK" + secrets.token_hex(8)
        headers = self._headers("INVITE", 1, branch)
        headers.add("Content-Type", "application/sdp")
        invite = SipRequest(headers, self._offer(), "INVITE", self.target.uri)
        self._send(invite)
        resend_at, interval, provisional = loop.time() + T1, T1, False
        while True:
            now = loop.time()
            if now >= until:
                self.result.fail("timeout (no final answer to INVITE)")
                return False
            wait = min(until, resend_at if not provisional else until) - now
            try:
                data, _addr = await asyncio.wait_for(self.sip.queue.get(), max(0.001, wait))
            except TimeoutError:
                if not provisional and loop.time() >= resend_at:
                    self._send(invite)
                    interval = min(interval * 2, 4.0)
                    resend_at = loop.time() + interval
                continue
            msg = _parse(data)
            if not isinstance(msg, SipResponse) or msg.cseq != (1, "INVITE"):
                continue
            if msg.status < 200:
                provisional = True
                continue
            self._remote_tag = msg.to.tag or ""
            if msg.status >= 300:
                self._ack(branch)  # a non-2xx final response is ACKed in the INVITE transaction
                self.result.fail("503 full" if msg.status == 503 else f"sip {msg.status} {msg.reason}")
                return False
            return self._answered(msg, began)

    def _answered(self, ok: SipResponse, began: float) -> bool:
        contact = ok.headers.get("Contact")
        if contact:
            self._remote_uri = contact.split("<", 1)[-1].split(">", 1)[0].strip() or self._remote_uri
        self._ack("z9hG4bK" + secrets.token_hex(8))
        try:
            sdp = parse_sdp(ok.body)
            audio = next(m for m in sdp.media if m.media == "audio" and m.port)
            host = audio.connection or sdp.connection or self.target.host
            self._rtp_peer = (host, audio.port)
            self._rtp_pt = int(audio.formats[0])
        except (VoicebotError, StopIteration, ValueError) as exc:
            self.result.fail(f"bad SDP answer: {exc}")
            return False
        self.result.outcome = "answered"
        self.result.call_id = self._call_id
        self.result.setup_ms = round((asyncio.get_running_loop().time() - began) * 1000.0, 1)
        return True

    def _ack(self, branch: str) -> None:
        ack = SipRequest(self._headers("ACK", 1, branch), b"", "ACK", self._remote_uri)
        self._send(ack)

    async def _bye(self) -> None:
        self._cseq += 1
        bye = SipRequest(
            self._headers("BYE", self._cseq, "z9hG4bK" + secrets.token_hex(8)), b"", "BYE", self._remote_uri
        )
        loop = asyncio.get_running_loop()
        until = loop.time() + BYE_TIMEOUT_S
        while loop.time() < until:
            self._send(bye)
            try:
                async with asyncio.timeout(T1):
                    while True:
                        data, _ = await self.sip.queue.get()
                        msg = _parse(data)
                        if (
                            isinstance(msg, SipResponse)
                            and msg.cseq == (self._cseq, "BYE")
                            and msg.status >= 200
                        ):
                            return
            except TimeoutError:
                continue

    async def _serve_requests(self) -> None:
        """Answer the server's BYE (the call ends) and re-ACK a retransmitted 200 OK."""
        while True:
            data, addr = await self.sip.queue.get()
            msg = _parse(data)
            if isinstance(msg, SipResponse) and msg.cseq == (1, "INVITE") and msg.status < 300:
                self._ack("z9hG4bK" + secrets.token_hex(8))
            elif isinstance(msg, SipRequest) and msg.method != "ACK":
                self._send(build_response(msg, 200 if msg.method in ("BYE", "OPTIONS") else 501), addr)
                if msg.method == "BYE":
                    self._ended = True
                    self.result.end_reason = "server hung up (BYE)"

    async def _send_rtp(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._rtp_peer is not None
        ssrc, seq, ts = random.randrange(1 << 32), random.randrange(1 << 16), random.randrange(1 << 32)
        start = loop.time()
        for n in range(1 << 62):
            await asyncio.sleep(max(0.0, start + n * FRAME_S - loop.time()))
            frame = self.player.next_frame()
            pkt = RtpPacket(
                0, (seq + n) & 0xFFFF, (ts + n * 160) & 0xFFFFFFFF, ssrc, ulaw_encode(frame.samples)
            )
            self.rtp_t.sendto(pkt.to_bytes(), self._rtp_peer)
            if frame.speech_ended:
                self._speech_end_at = loop.time()
            if frame.drained and self._waiting:
                fut = self._waiting.pop(0)
                if not fut.done():
                    fut.set_result(None)

    async def _receive_rtp(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, _addr = await self.rtp.queue.get()
            try:
                pkt = RtpPacket.parse(data)
            except VoicebotError:
                continue
            if pkt.payload_type not in (0, 8):
                continue
            pcm = ulaw_decode(pkt.payload) if pkt.payload_type == 0 else alaw_decode(pkt.payload)
            rms = self.result.audio.add(np.asarray(pcm), RATE)
            if rms > LOUD_RMS:
                now = loop.time()
                self._last_loud_at = now
                if self._speech_end_at is not None:
                    self.result.latencies_ms.append(round((now - self._speech_end_at) * 1000.0, 1))
                    self._speech_end_at = None
                    self._answers += 1


def _parse(data: bytes) -> SipRequest | SipResponse | None:
    try:
        return parse_message(data)
    except VoicebotError:
        return None
