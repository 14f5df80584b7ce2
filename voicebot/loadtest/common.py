"""What every caller shares: the run's settings and the conversation loop (speak, wait for the answer, repeat).

A caller (WebRTC or SIP) implements ``Conversation``: it can queue an utterance on its microphone, tell when
the server ended the call, and tell whether the agent has answered since a given point. ``run_turns`` drives
the turns: each utterance is played in real time, then the caller waits (bounded) for the agent's answer to
finish before speaking again, like a polite person. With ``duration_s`` the utterances repeat until that
many seconds after the answer; without it each is played once and the caller hangs up after the last answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from voicebot.loadtest.media import Utterance
from voicebot.loadtest.report import CallResult

log = logging.getLogger("voicebot.loadtest")

Transport = Literal["webrtc", "sip"]
POLL_S = 0.05
PAUSE_BETWEEN_TURNS_S = 0.4
#: How long a caller without audio and without --duration-s stays on the line.
SILENT_CALL_S = 5.0


@dataclass(slots=True)
class LoadTestConfig:
    """One ``voicebot loadtest`` run (the CLI flags, see docs/loadtest.md)."""

    url: str | None = None  # http://host:port of the server (WebRTC)
    calls: int = 1
    concurrency: int | None = None  # default: all calls at once
    ramp_s: float = 0.0  # spread the call starts over this many seconds
    audio: list[Path] = field(default_factory=list)
    duration_s: float | None = None  # stay this long after the answer (repeating the audio)
    max_s: float = 300.0  # the whole run ends by then
    transport: Transport = "webrtc"
    sip_target: str | None = None  # sip:bot@host:port
    connect_timeout_s: float = 15.0  # request sent → answered with media up
    answer_timeout_s: float = 20.0  # end of the caller's speech → the agent's answer finished
    ice_host_addresses: list[str] | None = None  # default: 127.0.0.1 / ::1 for a loopback target
    json_path: Path | None = None

    @property
    def effective_concurrency(self) -> int:
        return max(1, min(self.concurrency or self.calls, self.calls))


class Conversation(Protocol):
    result: CallResult

    @property
    def ended(self) -> bool: ...

    def speak(self, utterance: Utterance) -> asyncio.Future[None]:
        """Queue ``utterance`` on the microphone; the future resolves when it has been played."""
        ...

    def answer_mark(self) -> int:
        """An opaque mark taken at the end of the caller's speech, for ``answered_since``."""
        ...

    def answered_since(self, mark: int) -> bool:
        """The agent has answered (and finished speaking) since ``mark``."""
        ...


async def wait_until(cond: Callable[[], bool], until: float) -> bool:
    """Poll ``cond`` until it holds (True) or the loop time reaches ``until`` (False)."""
    loop = asyncio.get_running_loop()
    while not cond():
        left = until - loop.time()
        if left <= 0:
            return False
        await asyncio.sleep(min(POLL_S, left))
    return True


async def run_turns(
    conv: Conversation, utterances: list[Utterance], cfg: LoadTestConfig, stop_at: float
) -> str:
    """Talk until done, the call ended, ``duration_s`` passed or ``stop_at`` (loop time); returns why it stopped."""
    loop = asyncio.get_running_loop()
    until = stop_at if cfg.duration_s is None else min(stop_at, loop.time() + cfg.duration_s)
    if not utterances:
        if cfg.duration_s is None:
            until = min(until, loop.time() + SILENT_CALL_S)
        await wait_until(lambda: conv.ended, until)
        return _why(conv, until, stop_at, loop.time())
    turn = 0
    while not conv.ended and loop.time() < until:
        if cfg.duration_s is None and turn >= len(utterances):
            return "done"
        utt = utterances[turn % len(utterances)]
        played = conv.speak(utt)
        await wait_until(lambda p=played: p.done() or conv.ended, until)  # type: ignore[misc]
        if not played.done():
            break
        conv.result.turns_played += 1
        mark = conv.answer_mark()
        answer_until = min(until, loop.time() + cfg.answer_timeout_s)
        answered = await wait_until(lambda m=mark: conv.answered_since(m) or conv.ended, answer_until)  # type: ignore[misc]
        if not answered and loop.time() < until:
            conv.result.errors.append(f"no answer to turn {turn + 1} within {cfg.answer_timeout_s:.0f} s")
        await asyncio.sleep(max(0.0, min(PAUSE_BETWEEN_TURNS_S, until - loop.time())))
        turn += 1
    return _why(conv, until, stop_at, loop.time())


def _why(conv: Conversation, until: float, stop_at: float, now: float) -> str:
    if conv.ended:
        return conv.result.end_reason or "ended by the server"
    if now >= stop_at:
        return "max-s reached"
    return "duration reached" if now >= until else "done"
