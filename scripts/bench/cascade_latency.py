"""Turn latency of the cascade (transcriptions → responses → speech) against the Realtime path.

Run: ``.venv/bin/python scripts/bench/cascade_latency.py [--rounds 2]`` (about 1-2 minutes).

Both paths run on the same embedded local engine (served on 127.0.0.1, one speech stack), with the weather
agent, the same utterances (made by the engine's TTS) played in real time by a FileAudioPort through a Call:

* ``realtime``: ``RealtimeModelSession`` over the engine's Realtime WebSocket (server VAD, 500 ms silence);
* ``cascade``: ``CascadeModelSession`` over the engine's HTTP endpoints through the official SDK (local VAD,
  500 ms silence, sentence-by-sentence speech).

Per turn it measures:

* ``end→audio``: from the end of the caller's speech (the last sample of the utterance was sent) to the first
  assistant audio event. Includes the 500 ms end-of-turn silence of both detectors.
* ``stop→played``: the Call's own measure (``CallStats.turn_latencies_ms``): from the model's "speech stopped"
  to the first assistant frame handed to the port.

It prints every turn and the medians per path.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp import web

from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call
from voicebot.config import Settings
from voicebot.events import AudioOut, ModelEvent
from voicebot.fallback.cascade import CascadeConfig, CascadeModelSession
from voicebot.fallback.openai_http import make_client
from voicebot.fileport import FileAudioPort
from voicebot.local import keys
from voicebot.local.app import create_engine_app
from voicebot.local.speech import SpeechStack
from voicebot.ports import ModelSession
from voicebot.realtime.client import ConnectOptions, RealtimeModelSession
from voicebot.realtime.wire import SessionConfig
from voicebot.tools import ToolRunner, load_agent

ROOT = Path(__file__).resolve().parents[2]
UTTERANCES = [
    "Hello, how are you today?",
    "What is the weather like in Paris?",
    "Can you tell me what time it is?",
    "And the weather in London?",
    "Thank you very much.",
]


async def run_path(path: str, base: str, utterances: list[PcmChunk]) -> list[tuple[float, float]]:
    runner = ToolRunner(load_agent(f"{ROOT / 'examples' / 'weather_agent.py'}:agent"))
    pieces = runner.session_config()
    model: ModelSession
    if path == "realtime":
        config = SessionConfig(instructions=pieces["instructions"], tools=tuple(pieces["tools"]))
        model = RealtimeModelSession(ConnectOptions(base.replace("http", "ws", 1), "sk-bench"), config)
    else:
        cfg = CascadeConfig(instructions=pieces["instructions"], tools=tuple(pieces["tools"]))
        model = CascadeModelSession(make_client(base, "sk-bench"), cfg, close_client=True)
    port = FileAudioPort(PcmChunk.silence(300, 24000), hangup_when_idle_s=None, max_s=600)
    first_audio: list[float] = []
    call = Call(port, model, tools=runner)

    def see(event: ModelEvent) -> None:
        if isinstance(event, AudioOut):
            first_audio.append(time.monotonic())

    call.add_listener(see)
    task = asyncio.create_task(call.run())
    results: list[tuple[float, float]] = []
    for audio in utterances:
        await asyncio.sleep(0.5)
        mark = len(first_audio)
        port.inject(audio)
        await wait_for(lambda: port.source_done_at is None, 10)  # the port picked the utterance up
        await wait_for(lambda: port.source_done_at is not None, 30)
        ended = port.source_done_at or 0.0
        await wait_for(more_than(first_audio, mark), 30)
        await wait_quiet(port)
        end_to_audio = (first_audio[mark] - ended) * 1000
        played = call.stats.turn_latencies_ms[-1] if call.stats.turn_latencies_ms else float("nan")
        results.append((end_to_audio, played))
        print(f"  {path:8s} {end_to_audio:7.0f} ms  {played:7.0f} ms", flush=True)
    port.hang_up()
    await asyncio.wait_for(task, 10)
    return results


def more_than(items: list[float], count: int) -> Callable[[], bool]:
    return lambda: len(items) > count


async def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def wait_quiet(port: FileAudioPort, for_s: float = 0.8) -> None:
    async with asyncio.timeout(60):
        while True:
            last = port.last_output_at
            if port.queue.idle and last is not None and time.monotonic() - last >= for_s:
                return
            await asyncio.sleep(0.02)


async def main(rounds: int) -> None:
    stack = await SpeechStack.create()
    engine = create_engine_app(Settings(openai_api_key=None))
    engine[keys.SPEECH] = stack
    root = web.Application()
    root.add_subapp("/v1", engine)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    print(f"speech stack: {stack.info}")
    try:
        utterances = [PcmChunk.concat([c async for c in stack.synthesize(u)], rate=24000) for u in UTTERANCES]
        totals: dict[str, list[tuple[float, float]]] = {"realtime": [], "cascade": []}
        print("  path     end→audio  stop→played")
        for _ in range(rounds):
            for path in ("realtime", "cascade"):
                totals[path] += await run_path(path, base, utterances)
        print()
        for path, values in totals.items():
            end = statistics.median(v[0] for v in values)
            played = statistics.median(v[1] for v in values)
            print(
                f"median {path:8s} end→audio {end:6.0f} ms   stop→played {played:6.0f} ms   (n={len(values)})"
            )
    finally:
        await runner.cleanup()
        await stack.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times each path plays the utterances")
    asyncio.run(main(parser.parse_args().rounds))
