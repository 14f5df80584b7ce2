"""The TTS worker process and the pool that drives it from the event loop.

Protocol over one duplex ``multiprocessing`` pipe per worker, one request in flight at a time:

    parent → worker   ("synth", request_id, text, voice, speed)   |   ("stop",)
    worker → parent   ("ready", engine_name, sample_rate, skipped) once after start-up, or ("failed", reason)
                      ("audio", request_id, pcm16_bytes)           |   ("error", request_id, reason)

Workers are started with the 'spawn' context (never fork a process that runs an event loop and threads).
Blocking pipe I/O happens in one thread per worker, so the loop never waits on a pipe. A worker that dies
fails the request in flight with ``SpeechBackendError`` and is restarted on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import signal
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from voicebot.audio.chunk import Int16Array
from voicebot.errors import ConfigError
from voicebot.local.speech.types import SpeechBackendError

log = logging.getLogger("voicebot.local.speech")

START_TIMEOUT_S = 60.0


def worker_main(conn: Connection, choice: str, variation: float = 1.0) -> None:
    """Entry point of the worker process: load one engine, then answer requests until told to stop."""
    from voicebot.local.speech.tts_engines import load_tts

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business; it stops us cleanly
    try:
        engine, skipped = load_tts(choice, variation)
    except Exception as exc:
        conn.send(("failed", repr(exc)))
        conn.close()
        return
    conn.send(("ready", engine.name, engine.sample_rate, skipped))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if msg[0] != "synth":
            break
        _, request_id, text, voice, speed = msg
        try:
            pcm = engine.synthesize(text, voice, speed)
            conn.send(("audio", request_id, pcm.astype("<i2", copy=False).tobytes()))
        except Exception as exc:
            conn.send(("error", request_id, repr(exc)))
    conn.close()


class _Worker:
    """One worker process seen from the parent. Every method blocks; call them on ``executor``."""

    def __init__(self, choice: str, index: int, timeout_s: float, variation: float = 1.0) -> None:
        self.choice = choice
        self.variation = variation
        self.index = index
        self.timeout_s = timeout_s
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"voicebot-tts-{index}")
        self.process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._ids = itertools.count(1)
        self.engine_name = ""
        self.sample_rate = 0
        self.skipped: list[str] = []

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        proc = ctx.Process(
            target=worker_main,
            args=(child_conn, self.choice, self.variation),
            name=f"voicebot-tts-{self.index}",
            daemon=True,
        )
        proc.start()
        child_conn.close()
        self.process, self._conn = proc, parent_conn
        if not parent_conn.poll(START_TIMEOUT_S):
            self.kill()
            raise SpeechBackendError(f"TTS worker did not start within {START_TIMEOUT_S:.0f} s")
        try:
            msg = parent_conn.recv()
        except (EOFError, OSError) as exc:
            proc.join(1.0)
            code = proc.exitcode
            self.kill()
            raise SpeechBackendError(f"TTS worker died while starting (exit code {code})") from exc
        if msg[0] != "ready":
            self.kill()
            raise ConfigError(f"TTS backend {self.choice!r} failed to load: {msg[1]}")
        _, self.engine_name, self.sample_rate, self.skipped = msg
        self.choice = self.choice if self.choice != "auto" else _tier_of(self.engine_name)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def request(self, text: str, voice: str | None, speed: float) -> Int16Array:
        if not self.alive or self._pipe_closed():
            if self.process is not None:
                log.warning("TTS worker %d is gone (exit code %s); restarting it", self.index, self.exitcode)
                self.kill()
            self.start()
        conn = self._conn
        assert conn is not None
        request_id = next(self._ids)
        try:
            conn.send(("synth", request_id, text, voice, speed))
            if not conn.poll(self.timeout_s):
                self.kill()
                raise SpeechBackendError(
                    f"TTS worker took over {self.timeout_s:.0f} s for one sentence; killed it"
                )
            msg = conn.recv()
        except (EOFError, OSError) as exc:
            if self.process is not None:
                self.process.join(1.0)
            code = self.exitcode
            self.kill()
            raise SpeechBackendError(
                f"TTS worker process died (exit code {code}) while synthesizing; "
                "it restarts on the next request"
            ) from exc
        if msg[1] != request_id:
            self.kill()
            raise SpeechBackendError(
                f"TTS worker answered request {msg[1]}, expected {request_id}; restarting"
            )
        if msg[0] == "error":
            raise SpeechBackendError(f"TTS synthesis failed: {msg[2]}")
        return np.frombuffer(msg[2], dtype="<i2").astype(np.int16)

    def _pipe_closed(self) -> bool:
        """An idle worker's pipe is readable only when the worker has exited (EOF)."""
        try:
            return self._conn is None or self._conn.poll(0)
        except OSError:
            return True

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode if self.process is not None else None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._conn is not None and self.alive:
            with contextlib.suppress(OSError):
                self._conn.send(("stop",))
            if self.process is not None:
                self.process.join(timeout_s)
        self.kill()

    def kill(self) -> None:
        """Make sure the process is gone and reaped, and the pipe closed."""
        proc, self.process = self.process, None
        if proc is not None:
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
            with contextlib.suppress(ValueError):
                proc.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _tier_of(engine_name: str) -> str:
    return "piper" if engine_name.startswith("piper") else "espeak"


class TtsPool:
    """``workers`` TTS processes; each sentence takes one idle worker for its round trip."""

    def __init__(self, workers: list[_Worker]) -> None:
        self._workers = workers
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        for w in workers:
            self._idle.put_nowait(w)
        self._closed = False
        first = workers[0]
        self.engine_name = first.engine_name
        self.sample_rate = first.sample_rate
        self.skipped = first.skipped

    @classmethod
    async def start(
        cls, choice: str, *, workers: int = 1, timeout_s: float = 30.0, variation: float = 1.0
    ) -> TtsPool:
        if workers < 1:
            raise ConfigError(f"need at least one TTS worker, got {workers}")
        loop = asyncio.get_running_loop()
        first = _Worker(choice, 0, timeout_s, variation)
        created = [first]
        try:
            await loop.run_in_executor(first.executor, first.start)
            created += [_Worker(first.choice, i, timeout_s, variation) for i in range(1, workers)]
            await asyncio.gather(*(loop.run_in_executor(w.executor, w.start) for w in created[1:]))
        except BaseException:
            for w in created:
                await loop.run_in_executor(w.executor, w.kill)
                w.executor.shutdown(wait=False)
            raise
        return cls(created)

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None and w.process.pid is not None]

    async def synthesize(self, text: str, voice: str | None, speed: float) -> Int16Array:
        """One sentence at the engine's native rate. Cancelling the caller lets the round trip finish."""
        if self._closed:
            raise SpeechBackendError("the speech stack is closed")
        worker = await self._idle.get()
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(worker.executor, worker.request, text, voice, speed)
        fut.add_done_callback(lambda f: self._release(worker, f))
        return await asyncio.shield(fut)

    def _release(self, worker: _Worker, fut: asyncio.Future[Any]) -> None:
        if not fut.cancelled():
            fut.exception()  # retrieved here so an abandoned request does not log "never retrieved"
        self._idle.put_nowait(worker)

    async def close(self, timeout_s: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        idle: list[_Worker] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):  # let requests in flight finish
                while len(idle) < len(self._workers):
                    idle.append(await self._idle.get())
        for w in self._workers:
            proc = w.process
            if w not in idle and proc is not None:
                log.warning("TTS worker %d still busy at close; killing it", w.index)
                with contextlib.suppress(ValueError):
                    proc.kill()  # its pending request then fails fast and frees the executor thread
        for w in self._workers:
            await loop.run_in_executor(w.executor, w.stop)
            w.executor.shutdown(wait=True)
