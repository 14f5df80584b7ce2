"""Concurrent phone calls: sipp load (RTP both ways) against the SIP bridge, with and without the model leg.

Run (needs sipp, Debian package sip-tester)::

    .venv/bin/python scripts/bench/sip_calls.py                       # 50, 150, 300 calls; ~5 minutes
    .venv/bin/python scripts/bench/sip_calls.py --sizes 50 --hold-s 5

For every size N and model mode the script starts a fresh bridge *server process* (SIP on 127.0.0.1,
RTP from a private port range) and runs ``sipp -m N -l N -r RATE -rtp_echo`` with the e2e scenario
tests/data/sipp/uac_call.xml: every call is INVITE/200/ACK, ``--hold-s`` seconds of RTP both ways (the bot
sends a 20 ms frame per tick, sipp echoes it back, the bot feeds what it receives to the model), then BYE.

Model modes:

``echo``      a ModelSession that plays the caller's audio back: the bridge without a model leg (baseline).
``realtime``  the real model leg: ``RealtimeModelSession`` (WebSocket, G.711 passthrough) to the local
              engine, which runs in a *separate* process so that only the bridge's own cost is measured.

Reported per run: failed calls (sipp); the bridge's CPU (all threads, from /proc) over the run, per
call-second, and in the steady state (every call up, none hung up yet: the window after the ramp until the
first call ends; needs ``--hold-s`` well above N / rate + 2.5 s), with its kernel share; the p50/p99/max
interval between consecutive RTP packets of each stream, measured in the bridge at ``sendto`` once every call
is up (SIGUSR1 after the ramp resets it); garbage-collector runs and the longest pause in that window.

The verdict compares realtime against echo CPU at the same N, and the realtime leg at 150 calls against the
10 % of a core a bare asyncio echo UAS needs for 150 echoed calls (must be ≤ 3x). Every run is bounded by
``--hold-s`` plus set-up and a hard timeout. The bridge reads its settings from the environment like
``voicebot serve`` (for example ``VOICEBOT_REALTIME_INPUT_BATCH_MS=20`` to compare batch sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "tests" / "data" / "sipp" / "uac_call.xml"
TICK = os.sysconf("SC_CLK_TCK")
# a bare asyncio UAS echoing RTP for 150 concurrent sipp calls, without a model leg (the SIP reference notes)
REFERENCE_ECHO_UAS_PCT = 10.0


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, every thread."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


# -- the bridge server (runs in a child process) -------------------------------------------------------
class EchoModel:
    """A ModelSession that speaks the caller's audio back (no model leg at all)."""

    input_rate = 8000
    output_rate = 8000

    def __init__(self) -> None:
        self._events: asyncio.Queue[Any] = asyncio.Queue()

    async def start(self) -> None:
        return None

    async def send_audio(self, chunk: Any) -> None:
        from voicebot.events import AudioOut

        self._events.put_nowait(AudioOut("echo", chunk))

    async def events(self) -> AsyncIterator[Any]:
        while (event := await self._events.get()) is not None:
            yield event

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
        self._events.put_nowait(None)


async def serve(mode: str, sip_port: int, engine_url: str | None, stats_path: Path) -> None:
    import logging

    from aiohttp import web

    from voicebot.config import Settings

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from voicebot.server.app import BASE_URL, SETTINGS
    from voicebot.server.sessions import AGENT, default_agent, preload_call_modules
    from voicebot.server.sip import SIP_MODEL_FACTORY, SIP_SERVICE, setup_sip

    extra: dict[str, Any] = {}
    if engine_url is not None:
        extra = {"openai_api_key": "sk-bench", "openai_base_url": engine_url}
    settings = Settings(
        sip_port=sip_port,
        sip_host="127.0.0.1",
        rtp_port_min=46000,
        rtp_port_max=47999,
        max_calls=1000,
        sip_invites_per_s=1000,
        sip_requests_per_s=5000,
        **extra,
    )
    app = web.Application()
    app[SETTINGS] = settings
    app[BASE_URL] = "http://127.0.0.1:9"
    app[AGENT] = default_agent(settings)
    preload_call_modules(settings)  # as create_app does
    if mode == "echo":
        app[SIP_MODEL_FACTORY] = lambda app, **kw: EchoModel()
    setup_sip(app)
    runner = web.AppRunner(app)
    await runner.setup()
    from voicebot.server.capacity import freeze_startup_heap

    await freeze_startup_heap(app)  # as create_app does at startup
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    service = app[SIP_SERVICE]
    # garbage-collector pauses stall every call at once: they show up in the pacing percentiles
    gc_pauses: list[tuple[int, float]] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append((info["generation"], (time.perf_counter() - gc_started[0]) * 1000))

    gc.callbacks.append(on_gc)

    def steady() -> None:  # ramp-up done: measure from here
        service.clock.intervals.reset()
        gc_pauses.clear()

    loop.add_signal_handler(signal.SIGUSR1, steady)
    print("ready", flush=True)
    await stop.wait()
    iv = service.clock.intervals
    stats = {
        "p50_ms": iv.percentile(50),
        "p99_ms": iv.percentile(99),
        "max_ms": max((i + 1) * iv.BUCKET_MS for i, n in enumerate(iv.buckets) if n) if iv.count else 0,
        "intervals": iv.count,
        "calls": dict(service.stats),
        "sip": dict(service.endpoint.stats),
        "clock": dict(service.clock.stats),
        "gc_runs": len(gc_pauses),
        "gc_full_runs": sum(1 for gen, _ in gc_pauses if gen == 2),
        "gc_max_ms": round(max((ms for _, ms in gc_pauses), default=0.0), 1),
    }
    await asyncio.to_thread(stats_path.write_text, json.dumps(stats))
    await runner.cleanup()


# -- the driver --------------------------------------------------------------------------------------
def start_engine() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port(socket.SOCK_STREAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICEBOT_", "OPENAI_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicebot", "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the local engine exited")
        if line.startswith(b"local engine listening on"):
            return proc, f"http://127.0.0.1:{port}/v1"
    raise RuntimeError("the local engine did not start")


def run_level(mode: str, calls: int, args: argparse.Namespace, engine_url: str | None) -> dict[str, Any]:
    sip_port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix=f"sipbench-{mode}-{calls}-"))
    stats_path = tmp / "server.json"
    cmd = [sys.executable, __file__, "_serve", mode, str(sip_port), engine_url or "-", str(stats_path)]
    with (tmp / "server.log").open("wb") as server_log:  # the child keeps its own copy of the descriptor
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=server_log)
    assert server.stdout is not None
    if server.stdout.readline().strip() != b"ready":
        raise RuntimeError("the bridge server did not start")
    xml = SCENARIO.read_text()
    for key, value in {"CODECS": "0 8", "MEDIA": "", "TALK_MS": int(args.hold_s * 1000)}.items():
        xml = xml.replace(f"@{key}@", str(value))
    (tmp / "uac.xml").write_text(xml)
    sipp = [
        shutil.which("sipp") or "sipp", f"127.0.0.1:{sip_port}", "-sf", str(tmp / "uac.xml"),
        "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2),
        "-rtp_echo", "-m", str(calls), "-l", str(calls), "-r", str(args.rate), "-nostdin",
        "-timeout", f"{int(args.hold_s + calls / args.rate + 30)}s", "-timeout_error",
        "-trace_stat", "-stf", str(tmp / "stat.csv"), "-fd", "1",
    ]  # fmt: skip
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    load = subprocess.Popen(sipp, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ramp_s = calls / args.rate + 1.5
    time.sleep(ramp_s)  # every call is up (sipp -r): measure pacing from here on
    server.send_signal(signal.SIGUSR1)
    # steady state: every call up, none hung up yet (the first call ends ``hold_s`` after it started)
    steady_s = max(0.0, args.hold_s - ramp_s - 1.0)
    (user0, sys0) = cpu_split(server.pid)
    time.sleep(steady_s)
    user1, sys1 = cpu_split(server.pid)
    steady_cpu, steady_sys = user1 - user0 + sys1 - sys0, sys1 - sys0
    rc = load.wait(timeout=args.hold_s + calls / args.rate + 60)
    cpu, wall = cpu_seconds(server.pid) - cpu0, time.monotonic() - t0
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)
    stats = json.loads(stats_path.read_text())
    failed, ok = _sipp_counts(tmp / "stat.csv")
    call_seconds = calls * args.hold_s
    return {
        "mode": mode,
        "calls": calls,
        "sipp_rc": rc,
        "successful": ok,
        "failed": failed,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_pct_of_core": round(100 * cpu / wall, 1),
        "cpu_ms_per_call_s": round(1000 * cpu / call_seconds, 2),
        "steady_s": round(steady_s, 1),
        "steady_cpu_pct_of_core": round(100 * steady_cpu / steady_s, 1) if steady_s else None,
        "steady_kernel_pct_of_core": round(100 * steady_sys / steady_s, 1) if steady_s else None,
        **{k: stats[k] for k in ("p50_ms", "p99_ms", "max_ms", "gc_runs", "gc_full_runs", "gc_max_ms")},
        "server": stats["calls"],
        "logs": str(tmp),
    }


def _sipp_counts(csv: Path) -> tuple[int, int]:
    lines = [ln.split(";") for ln in csv.read_text().splitlines() if ln.strip()]
    head, last = lines[0], lines[-1]
    return int(last[head.index("FailedCall(C)")]), int(last[head.index("SuccessfulCall(C)")])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50,150,300", help="concurrent call counts")
    parser.add_argument("--modes", default="echo,realtime")
    parser.add_argument("--hold-s", type=float, default=20.0, help="seconds of RTP per call")
    parser.add_argument("--rate", type=int, default=50, help="new calls per second")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    if shutil.which("sipp") is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    modes = args.modes.split(",")
    engine, engine_url = start_engine() if "realtime" in modes else (None, None)
    results = []
    try:
        for calls in (int(n) for n in args.sizes.split(",")):
            for mode in modes:
                res = run_level(mode, calls, args, engine_url if mode == "realtime" else None)
                results.append(res)
                print(json.dumps(res), flush=True)
    finally:
        if engine is not None:
            engine.terminate()
            engine.wait(timeout=30)
    by = {(r["mode"], r["calls"]): r for r in results}
    for calls in sorted({r["calls"] for r in results}):
        echo, real = by.get(("echo", calls)), by.get(("realtime", calls))
        if echo and real and echo["cpu_s"]:
            line = f"N={calls}: realtime/echo CPU = {real['cpu_s'] / echo['cpu_s']:.2f}x over the run"
            if echo["steady_cpu_pct_of_core"] and real["steady_cpu_pct_of_core"]:
                steady = real["steady_cpu_pct_of_core"] / echo["steady_cpu_pct_of_core"]
                line += f", {steady:.2f}x in the steady state"
            print(line)
    real150 = by.get(("realtime", 150))
    if real150 is not None and real150["steady_cpu_pct_of_core"]:
        ratio = real150["steady_cpu_pct_of_core"] / REFERENCE_ECHO_UAS_PCT
        print(
            f"N=150: the bridge with the model leg takes {real150['steady_cpu_pct_of_core']}% of a core in the "
            f"steady state, {ratio:.1f}x the {REFERENCE_ECHO_UAS_PCT}% of a bare asyncio echo UAS "
            f"(docs/benchmarks.md; bound 3x)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["failed"] == 0 for r in results) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        _, _, mode_arg, port_arg, url_arg, path_arg = sys.argv
        asyncio.run(serve(mode_arg, int(port_arg), None if url_arg == "-" else url_arg, Path(path_arg)))
    else:
        sys.exit(main())
