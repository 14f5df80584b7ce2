"""Runs a load test: starts at most ``calls`` callers, at most ``concurrency`` at once, ramped over ``ramp_s``,
prints progress once a second and ends every call by ``max_s``; returns the ``LoadReport``.

For WebRTC the callers' ICE host candidates are restricted (``voicebot.webrtc.ice``) to the loopback address
when the target is loopback (aioice would otherwise offer no usable candidate there), or to
``ice_host_addresses`` when given; the restriction is undone when the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from voicebot.errors import BadRequest
from voicebot.loadtest.common import LoadTestConfig, log
from voicebot.loadtest.media import Utterance, load_utterances
from voicebot.loadtest.report import CallResult, LoadReport, summarize

Progress = Callable[[str], None]
#: Time kept back from ``max_s`` for hanging up the calls still in progress.
CLEANUP_RESERVE_S = 3.0
#: A run still going this long after ``max_s`` is cancelled outright.
HARD_STOP_GRACE_S = 5.0


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def validate(cfg: LoadTestConfig) -> str:
    """Check the settings; returns the target (URL or SIP URI) shown in the report."""
    if cfg.calls < 1:
        raise BadRequest("--calls must be at least 1")
    if cfg.concurrency is not None and cfg.concurrency < 1:
        raise BadRequest("--concurrency must be at least 1")
    if cfg.max_s <= 0 or cfg.ramp_s < 0 or (cfg.duration_s is not None and cfg.duration_s <= 0):
        raise BadRequest("--max-s and --duration-s must be positive, --ramp-s not negative")
    if cfg.transport == "sip":
        if not cfg.sip_target:
            raise BadRequest("--transport sip needs --sip-target sip:bot@HOST:PORT")
        return cfg.sip_target
    if not cfg.url:
        raise BadRequest("--url http://HOST:PORT is required for WebRTC calls")
    parts = urlsplit(cfg.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"--url must be http://HOST:PORT or https://HOST:PORT, not {cfg.url!r}")
    return cfg.url


def loopback_host(host: str | None) -> str | None:
    """The loopback address to use for ICE when ``host`` is a loopback name or address, else None."""
    if host is None:
        return None
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return str(ip) if ip.is_loopback else None


@contextlib.contextmanager
def ice_restriction(cfg: LoadTestConfig) -> Iterator[None]:
    addresses = cfg.ice_host_addresses
    if addresses is None:
        lo = loopback_host(urlsplit(cfg.url or "").hostname)
        addresses = [lo] if lo else None
    if not addresses:
        yield
        return
    from voicebot.webrtc.ice import restrict_host_addresses

    undo = restrict_host_addresses(addresses)
    try:
        yield
    finally:
        undo()


class _Counters:
    def __init__(self, results: list[CallResult]) -> None:
        self.results = results
        self.in_flight = 0

    def line(self, now: float) -> str:
        started = sum(1 for r in self.results if r.started_at is not None)
        answered = sum(1 for r in self.results if r.answered)
        failed = sum(1 for r in self.results if r.outcome == "failed")
        turns = sum(len(r.latencies_ms) for r in self.results)
        return (
            f"[{now:6.1f}s] started {started}/{len(self.results)}  answered {answered}  failed {failed}  "
            f"in flight {self.in_flight}  answered turns {turns}"
        )


async def run_loadtest(cfg: LoadTestConfig, *, progress: Progress = stderr_progress) -> LoadReport:
    """Run the load test described by ``cfg``; bad settings or audio raise ``BadRequest`` before any call."""
    target = validate(cfg)
    rate = 48000 if cfg.transport == "webrtc" else 8000
    utterances = await asyncio.to_thread(load_utterances, list(cfg.audio), rate)
    if cfg.transport == "sip":
        from voicebot.loadtest.sip_caller import check_sip_target

        check_sip_target(cfg.sip_target or "")
    results = [CallResult(i + 1, cfg.transport) for i in range(cfg.calls)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with ice_restriction(cfg) if cfg.transport == "webrtc" else contextlib.nullcontext():
        try:
            # every wait inside is bounded by max_s already; this is the backstop if something hangs
            async with asyncio.timeout(cfg.max_s + HARD_STOP_GRACE_S):
                await _run_calls(cfg, utterances, results, t0, progress)
        except TimeoutError:
            progress(f"stopped: calls still running {HARD_STOP_GRACE_S:.0f} s after --max-s were cancelled")
            for r in results:
                if r.outcome == "answered" and r.ended_at is None:
                    r.errors.append("cancelled after --max-s")
    wall = loop.time() - t0
    report = summarize(
        results, transport=cfg.transport, target=target, concurrency=cfg.effective_concurrency, wall_s=wall
    )
    if cfg.json_path is not None:
        await asyncio.to_thread(_write_json, cfg.json_path, report)
    return report


def _write_json(path: Path, report: LoadReport) -> None:
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")


async def _run_calls(
    cfg: LoadTestConfig, utterances: list[Utterance], results: list[CallResult], t0: float, progress: Progress
) -> None:
    loop = asyncio.get_running_loop()
    reserve = min(CLEANUP_RESERVE_S, cfg.max_s * 0.2)
    stop_at = t0 + cfg.max_s - reserve
    counters = _Counters(results)
    sem = asyncio.Semaphore(cfg.effective_concurrency)
    ticker = loop.create_task(_tick(counters, t0, progress))

    async def one(result: CallResult, http: aiohttp.ClientSession | None) -> None:
        try:
            await _one_call(cfg, utterances, result, http, (t0, stop_at), progress)
        finally:
            counters.in_flight -= 1
            sem.release()

    try:
        async with _transport_context(cfg) as session, asyncio.TaskGroup() as tg:
            for i, result in enumerate(results):
                start = t0 + (cfg.ramp_s * i / cfg.calls if cfg.calls > 1 else 0.0)
                if start >= stop_at:
                    break
                await asyncio.sleep(max(0.0, start - loop.time()))
                if not await _acquire(sem, stop_at):
                    break
                counters.in_flight += 1
                tg.create_task(one(result, session))
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
    progress(counters.line(loop.time() - t0) + "  (finished)")


async def _acquire(sem: asyncio.Semaphore, stop_at: float) -> bool:
    left = stop_at - asyncio.get_running_loop().time()
    if left <= 0:
        return False
    try:
        async with asyncio.timeout(left):
            await sem.acquire()
    except TimeoutError:
        return False
    return True


@contextlib.asynccontextmanager
async def _transport_context(cfg: LoadTestConfig) -> AsyncIterator[aiohttp.ClientSession | None]:
    """The HTTP session the WebRTC callers share (none for SIP)."""
    if cfg.transport != "webrtc":
        yield None
        return
    async with aiohttp.ClientSession() as http:
        yield http


async def _one_call(
    cfg: LoadTestConfig,
    utterances: list[Utterance],
    result: CallResult,
    http: aiohttp.ClientSession | None,
    times: tuple[float, float],
    progress: Progress,
) -> None:
    t0, stop_at = times
    loop = asyncio.get_running_loop()
    progress(f"[{loop.time() - t0:6.1f}s] call {result.index}: starting")
    if cfg.transport == "webrtc":
        from voicebot.loadtest.webrtc_caller import WebRtcCaller

        assert http is not None
        await WebRtcCaller(cfg, http, result).run(utterances, t0, stop_at)
    else:
        from voicebot.loadtest.sip_caller import SipCaller

        await SipCaller(cfg, result).run(utterances, t0, stop_at)
    if result.answered:
        what = f"answered ({result.call_id}), ended after {result.turns_played} turn(s): {result.end_reason}"
    else:
        what = f"FAILED: {result.reason}"
    log.debug("call %d: %s", result.index, what)
    progress(f"[{loop.time() - t0:6.1f}s] call {result.index}: {what}")


async def _tick(counters: _Counters, t0: float, progress: Progress) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(1.0)
        progress(counters.line(loop.time() - t0))
