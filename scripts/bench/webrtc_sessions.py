"""How many concurrent browser calls one voicebot process carries: N aiortc callers against the WebRTC broker.

Run (as root: it makes its own network namespace, so no packet leaves loopback)::

    .venv/bin/python scripts/bench/webrtc_sessions.py                 # N = 1, 10, 20, 40; about 3 minutes
    .venv/bin/python scripts/bench/webrtc_sessions.py --sizes 1,5 --seconds 5

Set-up. The script moves itself into a fresh network namespace (only ``lo``), then for each N starts a server
process pinned to core 0 (``taskset``) and runs N aiortc callers in this process, pinned to core 1. The
server is the real call path (``POST /api/calls`` → ``WebRtcPort`` → ``Call``, with ICE restricted to
127.0.0.1); its model side is chosen with ``--model``:

``scripted`` (default)  an in-process scripted model that talks like a Realtime session: a 2 s speech-like
                        burst (harmonics with a syllable envelope) delivered faster than real time, then 2 s
                        of quiet, in a loop. It isolates the cost of WebRTC + the call (no STT/TTS).
``local``               the model session of ``voicebot serve`` (``voicebot.server.sessions``; the local
                        engine when no OpenAI key is set), so the engine's speech stack is in the bill too.

Each caller sends a speech-like signal 1 s out of every 4 (Opus-encoded by aiortc, like a browser) and
decodes what it receives. After ``--warmup`` seconds the server's counters are reset and read again after
``--seconds``:

* server CPU (all threads, from /proc) as % of one core, and per session;
* server RSS, and RSS per session above the idle server;
* the outbound track's frame interval (time between consecutive ``recv()`` returns of every call's track):
  mean, p99, max, and the count of intervals over 30 ms.

The verdict is the largest N whose p99 stays under 25 ms with no interval over 30 ms.
Every run is bounded: ``--seconds`` + ``--warmup`` + set-up time per N, and ``--max-total-s`` overall.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CLONE_NEWNET = 0x40000000
SERVER_CORE = 0
CALLER_CORE = 1


# signals -------------------------------------------------------------------------------------------------
def speechlike(seconds: float, rate: int, seed: int = 1) -> np.ndarray[Any, np.dtype[np.int16]]:
    """A voiced, syllabic signal (harmonics of a wandering pitch under a 4 Hz envelope): encodes like speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    noise = rng.normal(0, 0.05, n)
    x = 0.3 * (voice / 3) * envelope + noise * envelope
    return np.asarray(np.clip(x * 32767, -32768, 32767), dtype=np.int16)


# the server process --------------------------------------------------------------------------------------
def serve(port: int, model: str, max_calls: int) -> None:
    from aiohttp import web

    from voicebot.config import Settings
    from voicebot.server import routes_calls
    from voicebot.webrtc import tracks

    gaps: list[float] = []
    last: dict[int, float] = {}
    original = tracks.OutboundAudioTrack.recv

    async def timed_recv(self: tracks.OutboundAudioTrack) -> Any:
        frame = await original(self)
        now = time.monotonic()
        prev = last.get(id(self))
        if prev is not None:
            gaps.append(now - prev)
        last[id(self)] = now
        return frame

    tracks.OutboundAudioTrack.recv = timed_recv  # type: ignore[method-assign]

    # garbage-collector pauses, which stall every call at once
    gc_pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append((time.perf_counter() - gc_started[0]) * 1000)

    gc.callbacks.append(on_gc)

    async def stats(request: web.Request) -> web.Response:
        if request.query.get("reset"):  # cheap: a slow handler here would itself stall the calls' frames
            gaps.clear()
            gc_pauses.clear()
            return web.json_response({"reset": True})
        arr = np.array(gaps) * 1000 if gaps else np.zeros(1)
        body = {
            "frames": len(gaps),
            "mean_ms": float(arr.mean()),
            "p99_ms": float(np.percentile(arr, 99)),
            "max_ms": float(arr.max()),
            "over_30ms": int((arr > 30).sum()),
            "calls": len(request.app[routes_calls.CALLS]),
            "gc_runs": len(gc_pauses),
            "gc_max_ms": max(gc_pauses, default=0.0),
            "gc_tracked": len(gc.get_objects()),  # what a full collection walks (the frozen heap is not)
        }
        return web.json_response(body)

    settings = Settings(host="127.0.0.1", port=port, ice_host_addresses=["127.0.0.1"], max_calls=max_calls)
    if model == "local":
        from voicebot.server.app import create_app

        app = create_app(settings)
    else:
        from voicebot.server.app import BASE_URL, SETTINGS

        app = web.Application()
        app[SETTINGS] = settings
        app[BASE_URL] = f"http://127.0.0.1:{port}"
        app[routes_calls.MODEL_FACTORY] = lambda app, *, caller, phone_quality=False: (ScriptedTalker(), None)
        # the same admission control as create_app: the cap, and load shedding when the loop runs late
        from voicebot.server.capacity import CALL_SLOTS, CallSlots, LoopLagMonitor, monitor_lifetime

        app[CALL_SLOTS] = CallSlots(
            settings.max_calls, monitor=LoopLagMonitor(), max_lag_ms=settings.shed_load_lag_ms
        )
        app.cleanup_ctx.append(monitor_lifetime)
        routes_calls.setup_call_routes(app)
        from voicebot.server.capacity import freeze_startup_heap

        app.on_startup.append(freeze_startup_heap)  # as create_app does
    app.router.add_get("/bench/stats", stats)
    web.run_app(
        app, host="127.0.0.1", port=port, print=lambda *_: print("ready", flush=True), access_log=None
    )


class ScriptedTalker:
    """A ModelSession that talks 2 s, is quiet 2 s, in a loop (bursts faster than real time, like Realtime)."""

    input_rate = 24000
    output_rate = 24000

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._clip = speechlike(2.0, 24000, seed=7)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._talk())

    async def _talk(self) -> None:
        from voicebot.audio.chunk import PcmChunk
        from voicebot.events import AudioOut

        n = 0
        while True:
            n += 1
            for chunk in PcmChunk(self._clip, 24000).frames(100):
                self._queue.put_nowait(AudioOut(f"item_{n}", chunk))
            await asyncio.sleep(4.0)

    async def send_audio(self, chunk: Any) -> None:
        return None

    async def events(self) -> Any:
        while True:
            ev = await self._queue.get()
            if ev is None:
                return
            yield ev

    async def submit_tool_output(self, call_id: str, output: str) -> None:
        return None

    async def truncate(self, item_id: str, played_ms: int) -> None:
        return None

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        return None

    async def update_session(self, **changes: Any) -> None:
        return None

    async def say(self, text: str) -> None:
        return None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._queue.put_nowait(None)


# the callers ---------------------------------------------------------------------------------------------
def make_mic(rate: int = 48000) -> Any:
    """The callers' microphone: 1 s of speech-like sound in every 4 s, Opus-encoded once up front and replayed
    as packets, so that 40+ callers fit on one core (the callers are the load generator, not the subject)."""
    import av
    from aiortc.codecs.opus import OpusEncoder
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    n = rate // 50
    cycle = np.zeros(4 * rate, dtype=np.int16)
    cycle[:rate] = speechlike(1.0, rate, seed=3)
    encoder = OpusEncoder()
    payloads: list[bytes] = []
    for i in range(2 * cycle.shape[0] // n):  # two cycles: the second is past the encoder's start-up
        frame = av.AudioFrame.from_ndarray(
            cycle[(i * n) % cycle.shape[0] :][:n].reshape(1, -1), layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = i * n
        frame.time_base = Fraction(1, rate)
        payloads += encoder.encode(frame)[0]
    packets = payloads[-(cycle.shape[0] // n) :]
    time_base = Fraction(1, 48000)

    class Mic(MediaStreamTrack):
        kind = "audio"

        def __init__(self, offset_s: float) -> None:
            super().__init__()
            self._start: float | None = None
            self._index = int(offset_s * 50)  # callers do not all speak at once
            self._sent = 0

        async def recv(self) -> Any:
            if self.readyState != "live":
                raise MediaStreamError
            now = time.monotonic()
            if self._start is None:
                self._start = now
            else:
                await asyncio.sleep(max(0.0, self._start + self._sent * 0.02 - now))
            packet = av.Packet(packets[(self._index + self._sent) % len(packets)])
            packet.pts = self._sent * 960
            packet.time_base = time_base
            self._sent += 1
            return packet

    return Mic


async def run_callers(base: str, n: int, warmup_s: float, seconds: float) -> dict[str, Any]:
    from aiohttp import ClientSession
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from voicebot.webrtc.tracks import decode_inline

    mic_cls = make_mic()
    pcs: list[Any] = []
    consumers: list[asyncio.Task[None]] = []
    received = [0]
    refused = [0]

    async def consume(track: Any) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                received[0] += 1

    async with ClientSession() as http:
        t_setup = time.monotonic()
        for i in range(n):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pcs.append(pc)
            transceiver = pc.addTransceiver(mic_cls(offset_s=(i * 0.37) % 4), direction="sendrecv")
            decode_inline(transceiver.receiver)  # the callers decode on their loop too
            pc.createDataChannel("events")
            pc.on("track", lambda t: consumers.append(asyncio.get_running_loop().create_task(consume(t))))
            await pc.setLocalDescription(await pc.createOffer())
            body = {"sdp": pc.localDescription.sdp, "type": "offer"}
            async with http.post(f"{base}/api/calls", json=body) as r:
                answer = await r.json()
                if r.status == 503:  # shed: the server is saturated and says so
                    refused[0] += 1
                    await pc.close()
                    pcs.remove(pc)
                    await asyncio.sleep(0.2)
                    continue
                if r.status != 201:
                    raise RuntimeError(f"call {i}: {r.status} {answer}")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        setup_s = time.monotonic() - t_setup
        await asyncio.sleep(warmup_s)
        async with http.get(f"{base}/bench/stats?reset=1") as r:
            await r.json()
        cpu0, wall0 = server_cpu(), time.monotonic()
        client0 = time.process_time()
        await asyncio.sleep(seconds)
        cpu1, wall1 = server_cpu(), time.monotonic()
        client1 = time.process_time()
        async with http.get(f"{base}/bench/stats") as r:
            stats: dict[str, Any] = await r.json()
        stats["rss_mb"] = server_rss_mb()
        connected = sum(1 for pc in pcs if pc.connectionState == "connected")
        for pc in pcs:
            await pc.close()
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
    stats.update(
        n=n,
        connected=connected,
        refused=refused[0],
        setup_s=round(setup_s, 2),
        server_cpu_pct=round(100 * (cpu1 - cpu0) / (wall1 - wall0), 1),
        client_cpu_pct=round(100 * (client1 - client0) / (wall1 - wall0), 1),
    )
    return stats


# process plumbing ----------------------------------------------------------------------------------------
SERVER_PID = [0]


def server_cpu() -> float:
    fields = Path(f"/proc/{SERVER_PID[0]}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime of all threads


def server_rss_mb() -> float:
    for line in Path(f"/proc/{SERVER_PID[0]}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def enter_private_netns() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        sys.exit(f"cannot create a network namespace ({os.strerror(err)}); run as root")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def start_server(port: int, model: str, max_calls: int) -> subprocess.Popen[str]:
    cmd = ["taskset", "-c", str(SERVER_CORE), sys.executable, __file__, "--serve", "--port", str(port)]
    cmd += ["--model", model, "--max-calls", str(max_calls)]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "ready" in line:
            SERVER_PID[0] = proc.pid
            return proc
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the bench server did not start")


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,10,20,40", help="comma-separated numbers of concurrent calls")
    ap.add_argument("--seconds", type=float, default=15.0, help="measured seconds per N")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds after the last call connects")
    ap.add_argument("--model", choices=["scripted", "local"], default="scripted")
    ap.add_argument("--max-total-s", type=float, default=900.0, help="stop starting new sizes after this")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=18080, help=argparse.SUPPRESS)
    ap.add_argument("--max-calls", type=int, default=100, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.port, args.model, args.max_calls)
        return

    enter_private_netns()
    os.sched_setaffinity(0, {CALLER_CORE})
    from voicebot.webrtc.ice import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])  # the callers' own ICE: loopback only, like the server's
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    idle_rss = None
    print(f"model={args.model}  server on core {SERVER_CORE}, callers on core {CALLER_CORE}", flush=True)
    header = "    N  conn  shed  srv CPU%  /call  cli CPU%  RSS MB  /call MB  gap mean  p99 ms  max ms  >30ms     gc  gc max"
    print(header, flush=True)
    for n in sizes:
        if time.monotonic() - started > args.max_total_s:
            print(f"stopping: over --max-total-s before N={n}")
            break
        proc = start_server(args.port, args.model, max(100, n + 5))
        try:
            if idle_rss is None:
                time.sleep(1.0)
                idle_rss = server_rss_mb()
            r = asyncio.run(run_callers(f"http://127.0.0.1:{args.port}", n, args.warmup, args.seconds))
        finally:
            stop_server(proc)
        held = max(1, r["connected"])
        r["cpu_per_call_pct"] = round(r["server_cpu_pct"] / held, 2)
        r["rss_per_call_mb"] = round((r["rss_mb"] - idle_rss) / held, 2)
        results.append(r)
        print(
            f"{n:5d}  {r['connected']:4d}  {r['refused']:4d}  {r['server_cpu_pct']:8.1f}  {r['cpu_per_call_pct']:5.2f}"
            f"  {r['client_cpu_pct']:8.1f}  {r['rss_mb']:6.0f}  {r['rss_per_call_mb']:8.2f}"
            f"  {r['mean_ms']:8.2f}  {r['p99_ms']:6.2f}  {r['max_ms']:6.1f}  {r['over_30ms']:5d}"
            f"  {r.get('gc_runs', 0):5d}  {r.get('gc_max_ms', 0.0):6.1f}",
            flush=True,
        )
    ok = [r["n"] for r in results if r["p99_ms"] < 25 and r["over_30ms"] == 0 and r["connected"] == r["n"]]
    print(
        f"idle server RSS {idle_rss:.0f} MB; largest N with p99 < 25 ms and no gap > 30 ms: {max(ok, default=0)}"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"model": args.model, "idle_rss_mb": idle_rss, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
