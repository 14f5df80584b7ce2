"""How many concurrent scripted Realtime sessions the local engine sustains.

Run::

    .venv/bin/python scripts/bench/engine_sessions.py                    # N = 1, 5, 10, 20, 40; ~4 minutes
    .venv/bin/python scripts/bench/engine_sessions.py --sizes 1,5 --seconds 10 --no-speech-bench

Set-up. The engine runs alone in a child process (``python -m voicebot local --port 0`` on 127.0.0.1, with
the demo brain rules), so its CPU can be read from /proc. This process first asks the engine for the
utterance ("What time is it?", ``POST /v1/audio/speech``, 24 kHz PCM), then for each N opens N
WebSocket sessions (``GET /v1/realtime``, default session: server VAD, pcm 24 kHz) with aiohttp. Each
client loops:

1. streams the utterance in real time (20 ms ``input_audio_buffer.append`` frames), then keeps streaming
   silence, as a microphone would;
2. waits for the answer: the latency is end of speech (the last speech frame appended) → the first
   ``response.output_audio.delta``; it includes the VAD's 200 ms of silence, STT (whisper on the engine's
   one STT thread, so utterances of concurrent sessions queue), the rule brain and the TTS (the answer is
   always the same sentence, so after the first turn it comes from the TTS cache);
3. "listens" while the answer would play (streaming silence for the answer's audio duration), then speaks
   again.

Clients start staggered over ``--stagger-s``; after all have started, a ``--seconds`` window is measured:
turns whose speech ended inside it count. Per N: turns, latency median / p95 / max, errors (``error``
events, responses not ``completed``, no answer within ``--turn-timeout-s``, dropped sockets), wrong answers
(the reply is not the demo rule's, so the engine misheard), the engine's
CPU (the engine process and its children, from /proc, as % of one core) and this load generator's CPU.
The verdict is the largest N with no errors and p95 under ``--bound-ms``. Then, unless
``--no-speech-bench``, the engine is stopped and ``python -m voicebot.local.speech.bench`` is run and
printed. Everything is bounded: per N about stagger + seconds + turn timeout; ``--max-total-s`` overall.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "voicebot" / "local" / "data" / "brain_rules.toml"
UTTERANCE = "What time is it?"
RATE = 24000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
SILENCE_FRAME = base64.b64encode(bytes(FRAME_BYTES)).decode("ascii")
TICK = os.sysconf("SC_CLK_TCK")


# the engine process --------------------------------------------------------------------------------------
def start_engine(timeout_s: float) -> tuple[subprocess.Popen[str], str]:
    """Start ``voicebot local`` on 127.0.0.1 (any free port); return it and its base URL."""
    env = dict(os.environ, VOICEBOT_LOCAL_RULES_PATH=str(RULES), VOICEBOT_LOG_LEVEL="warning")
    env.pop("OPENAI_API_KEY", None)
    cmd = [sys.executable, "-m", "voicebot", "local", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on " in line:
            return proc, line.split("listening on ", 1)[1].strip()
    proc.kill()
    raise SystemExit("the engine did not start")


def stop_engine(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` and its live children (the TTS worker), in clock ticks."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
            total += int(fields[11]) + int(fields[12])
    return total


# one scripted client -------------------------------------------------------------------------------------
@dataclass
class Turn:
    speech_end: float
    first_audio: float | None = None
    done: bool = False
    status: str = ""
    audio_bytes: int = 0
    answer: str = ""


@dataclass
class Client:
    ws_url: str
    utterance: list[str]  # base64 20 ms frames
    turn_timeout_s: float
    turns: list[Turn] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    current: Turn | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, session: aiohttp.ClientSession, start_delay: float, stop: asyncio.Event) -> None:
        await asyncio.sleep(start_delay)
        try:
            async with session.ws_connect(self.ws_url, headers={"Authorization": "Bearer sk-bench"}) as ws:
                reader = asyncio.create_task(self._read(ws))
                try:
                    await self._talk(ws, stop)
                finally:
                    reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            self.errors.append(f"socket: {type(exc).__name__}: {exc}")

    async def _talk(self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event) -> None:
        clock = Pacer()
        while not stop.is_set() and not ws.closed:
            for frame in self.utterance:
                await clock.send(ws, frame)
            turn = Turn(speech_end=time.monotonic())
            self.current, self.turns = turn, [*self.turns, turn]
            self.answered.clear()
            deadline = turn.speech_end + self.turn_timeout_s
            while not self.answered.is_set() and time.monotonic() < deadline and not ws.closed:
                await clock.send(ws, SILENCE_FRAME)
            if not turn.done:
                self.errors.append("no answer in time")
                return
            listen_until = time.monotonic() + turn.audio_bytes / (RATE * 2)
            while time.monotonic() < listen_until and not stop.is_set() and not ws.closed:
                await clock.send(ws, SILENCE_FRAME)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            event: dict[str, Any] = json.loads(msg.data)
            kind, turn = event["type"], self.current
            if kind == "error":
                self.errors.append(f"error event: {event['error'].get('code')}")
            elif turn is None:
                continue
            elif kind == "response.output_audio.delta":
                turn.first_audio = turn.first_audio or time.monotonic()
                turn.audio_bytes += len(base64.b64decode(event["delta"]))
            elif kind == "response.output_audio_transcript.done":
                turn.answer = event["transcript"]
            elif kind == "response.done":
                turn.done, turn.status = True, event["response"]["status"]
                if turn.status != "completed":
                    self.errors.append(f"response {turn.status}")
                self.answered.set()
        if self.current is not None and not self.current.done:
            self.errors.append("socket closed by the engine")


class Pacer:
    """Sends one 20 ms frame per 20 ms of wall time (absolute deadlines, so no drift)."""

    def __init__(self) -> None:
        self.next = time.monotonic()

    async def send(self, ws: aiohttp.ClientWebSocketResponse, frame_b64: str) -> None:
        self.next = max(self.next + FRAME_MS / 1000, time.monotonic() - 0.1)
        await asyncio.sleep(max(0.0, self.next - time.monotonic()))
        if not ws.closed:
            await ws.send_str(f'{{"type":"input_audio_buffer.append","audio":"{frame_b64}"}}')


# one size N ----------------------------------------------------------------------------------------------
async def run_size(
    n: int, base: str, utterance: list[str], args: argparse.Namespace, pid: int
) -> dict[str, Any]:
    ws_url = base.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
    clients = [Client(ws_url, utterance, args.turn_timeout_s) for _ in range(n)]
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        tasks = [
            asyncio.create_task(c.run(session, i * args.stagger_s / n, stop)) for i, c in enumerate(clients)
        ]
        await asyncio.sleep(args.stagger_s + 1.0)
        t0, ticks0, self0 = time.monotonic(), cpu_ticks(pid), _self_cpu()
        await asyncio.sleep(args.seconds)
        t1, ticks1, self1 = time.monotonic(), cpu_ticks(pid), _self_cpu()
        stop.set()
        await asyncio.wait(tasks, timeout=args.turn_timeout_s + 5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    window = t1 - t0
    turns = [t for c in clients for t in c.turns if t0 <= t.speech_end < t1]
    latencies = sorted((t.first_audio - t.speech_end) * 1000 for t in turns if t.first_audio is not None)
    errors = [e for c in clients for e in c.errors]
    expected = expected_answer()
    return {
        "n": n,
        "turns": len(turns),
        "median_ms": statistics.median(latencies) if latencies else None,
        "p95_ms": _percentile(latencies, 95),
        "max_ms": latencies[-1] if latencies else None,
        "errors": len(errors),
        "wrong_answers": sum(1 for t in turns if t.done and t.answer != expected),
        "error_kinds": sorted(set(errors)),
        "engine_cpu_pct": 100.0 * (ticks1 - ticks0) / TICK / window,
        "loadgen_cpu_pct": 100.0 * (self1 - self0) / window,
        "load_average": os.getloadavg()[0],  # the whole machine's, at the end of the window
    }


def expected_answer() -> str:
    """The demo rules' reply to the utterance (a wrong one means the engine misheard)."""
    rules = tomllib.loads(RULES.read_text("utf-8"))["rules"]
    return next(str(r["reply"]) for r in rules if re.search(r["pattern"], UTTERANCE, re.IGNORECASE))


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    k = max(0, min(len(values) - 1, round(q / 100 * len(values) + 0.5) - 1))  # nearest rank
    return values[k]


async def fetch_utterance(base: str) -> list[str]:
    """The utterance as 20 ms base64 frames, spoken by the engine's own TTS."""
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-bench"}) as session:
        body = {"model": "gpt-4o-mini-tts", "voice": "alloy", "input": UTTERANCE, "response_format": "pcm"}
        async with session.post(f"{base}/v1/audio/speech", json=body) as resp:
            resp.raise_for_status()
            pcm = await resp.read()
    pcm = pcm + bytes(-len(pcm) % FRAME_BYTES)
    return [
        base64.b64encode(pcm[i : i + FRAME_BYTES]).decode("ascii") for i in range(0, len(pcm), FRAME_BYTES)
    ]


# report --------------------------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def print_table(rows: list[dict[str, Any]], bound_ms: float) -> None:
    print(
        "| N | turns | median ms | p95 ms | max ms | errors | wrong answers | engine CPU % | load gen CPU % "
        "| load avg |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']} | {r['turns']} | {_fmt(r['median_ms'])} | {_fmt(r['p95_ms'])} | {_fmt(r['max_ms'])} "
            f"| {r['errors']} | {r['wrong_answers']} | {r['engine_cpu_pct']:.0f} "
            f"| {r['loadgen_cpu_pct']:.0f} | {r['load_average']:.1f} |"
        )
    ok = [r["n"] for r in rows if r["errors"] == 0 and r["p95_ms"] is not None and r["p95_ms"] < bound_ms]
    print(f"\nlargest N with no errors and p95 < {bound_ms:.0f} ms: {max(ok) if ok else 'none'}")
    for r in rows:
        if r["error_kinds"]:
            print(f"N={r['n']} errors: {', '.join(r['error_kinds'])}")


async def bench(args: argparse.Namespace, base: str, pid: int) -> list[dict[str, Any]]:
    utterance = await fetch_utterance(base)
    print(f"utterance {UTTERANCE!r}: {len(utterance) * FRAME_MS} ms; engine {base} (pid {pid})", flush=True)
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for n in args.sizes:
        if (
            time.monotonic() - started + args.stagger_s + args.seconds + args.turn_timeout_s
            > args.max_total_s
        ):
            print(f"stopping before N={n}: --max-total-s reached", flush=True)
            break
        row = await run_size(n, base, utterance, args, pid)
        print(
            f"N={n}: {row['turns']} turns, median {_fmt(row['median_ms'])} ms, p95 {_fmt(row['p95_ms'])} ms, "
            f"errors {row['errors']}, wrong answers {row['wrong_answers']}, "
            f"engine CPU {row['engine_cpu_pct']:.0f}%",
            flush=True,
        )
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1,5,10,20,40", help="comma-separated session counts")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per N")
    parser.add_argument("--stagger-s", type=float, default=4.0, help="clients start spread over this long")
    parser.add_argument("--turn-timeout-s", type=float, default=20.0, help="no answer after this: an error")
    parser.add_argument("--bound-ms", type=float, default=1500.0, help="p95 latency bound of the verdict")
    parser.add_argument("--max-total-s", type=float, default=900.0, help="stop starting new sizes after this")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--no-speech-bench", action="store_true", help="skip voicebot.local.speech.bench")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M')}")
    proc, base = start_engine(timeout_s=180)
    try:
        rows = asyncio.run(bench(args, base, proc.pid))
    finally:
        stop_engine(proc)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f} (other work on the machine skews the numbers)")
    print_table(rows, args.bound_ms)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if not args.no_speech_bench:
        print("\npython -m voicebot.local.speech.bench:", flush=True)
        subprocess.run(
            [sys.executable, "-m", "voicebot.local.speech.bench"], cwd=ROOT, timeout=600, check=False
        )


if __name__ == "__main__":
    main()
