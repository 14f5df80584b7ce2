"""What a load test measured (pure): one ``CallResult`` per call, summed up into a ``LoadReport``.

Nothing here reads the clock or does I/O; the callers fill ``CallResult``s, ``summarize`` turns them into a
report, ``format_report`` renders it for a terminal and ``LoadReport.to_json`` for a file.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: A received 20 ms frame whose RMS is above this counts as the agent speaking (int16 full scale 32767).
LOUD_RMS = 300.0


@dataclass(slots=True)
class ReceivedAudio:
    """Running totals of the audio one call received (the agent's voice, or silence)."""

    frames: int = 0
    seconds: float = 0.0
    loud_seconds: float = 0.0
    _sum_squares: float = 0.0
    _samples: int = 0

    def add(self, samples: np.ndarray[Any, Any], rate: int) -> float:
        """Account one received frame; returns its RMS."""
        if samples.size == 0 or rate <= 0:
            return 0.0
        x = samples.astype(np.float64).ravel()
        squares = float(np.dot(x, x))
        rms = math.sqrt(squares / x.size)
        seconds = x.size / rate
        self.frames += 1
        self.seconds += seconds
        self._sum_squares += squares
        self._samples += x.size
        if rms > LOUD_RMS:
            self.loud_seconds += seconds
        return rms

    @property
    def rms(self) -> float:
        return math.sqrt(self._sum_squares / self._samples) if self._samples else 0.0


@dataclass(slots=True)
class CallResult:
    """One call of a load test, as seen by the caller.

    ``outcome`` is ``answered`` (signalling succeeded and media connected) or ``failed`` (``reason`` says
    why: ``503 full``, ``timeout``, ``connect error``, ``http 502``, ``sip 486``, ...) or ``not started`` (the
    run's ``--max-s`` ran out first). Times are seconds since the start of the run.
    """

    index: int
    transport: str
    outcome: str = "not started"
    reason: str | None = None
    call_id: str | None = None
    started_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    setup_ms: float | None = None  # request sent → answered (HTTP 201 / SIP 200) → media up
    latencies_ms: list[float] = field(default_factory=list)
    turns_played: int = 0
    audio: ReceivedAudio = field(default_factory=ReceivedAudio)
    end_reason: str | None = None  # why the call ended (we hung up, the server ended it, ...)
    errors: list[str] = field(default_factory=list)  # error events / messages during an answered call
    transcripts: list[str] = field(default_factory=list)  # final transcripts ("user: …", "assistant: …")

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"

    def fail(self, reason: str) -> None:
        self.outcome = "failed"
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("started_at", "answered_at", "ended_at"):
            d[key] = _round(d[key])
        d["audio"] = {
            "seconds": round(self.audio.seconds, 3),
            "loud_seconds": round(self.audio.loud_seconds, 3),
            "rms": round(self.audio.rms, 1),
            "frames": self.audio.frames,
        }
        return d


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100, linear interpolation), or None for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass(slots=True)
class LoadReport:
    """The whole run: counts, failure reasons, latency and received-audio statistics, and every call."""

    transport: str
    target: str
    calls_requested: int
    concurrency: int
    wall_s: float
    attempted: int
    answered: int
    failed: int
    not_started: int
    failure_reasons: dict[str, int]
    latency_ms: dict[str, float | int | None]
    audio_s: dict[str, float | None]
    silent_calls: int  # answered calls that received no audible audio at all
    calls: list[CallResult]

    @property
    def ok(self) -> bool:
        """Every requested call was attempted and answered."""
        return self.answered == self.calls_requested and self.failed == 0

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "calls"}
        d["ok"] = self.ok
        d["calls"] = [c.to_dict() for c in self.calls]
        return d


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def _stats(values: list[float]) -> dict[str, float | None]:
    return {
        "median": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
        "max": _round(max(values)) if values else None,
        "min": _round(min(values)) if values else None,
    }


def summarize(
    results: list[CallResult], *, transport: str, target: str, concurrency: int, wall_s: float
) -> LoadReport:
    """Sum up ``results`` (one per requested call, started or not)."""
    attempted = [r for r in results if r.outcome != "not started"]
    answered = [r for r in results if r.answered]
    failed = [r for r in results if r.outcome == "failed"]
    latencies = [ms for r in answered for ms in r.latencies_ms]
    lat: dict[str, float | int | None] = {"turns": len(latencies), **_stats(latencies)}
    audio = _stats([r.audio.seconds for r in answered])
    audio.update({f"loud_{k}": v for k, v in _stats([r.audio.loud_seconds for r in answered]).items()})
    audio["rms_median"] = _round(percentile([r.audio.rms for r in answered], 50), 1)
    return LoadReport(
        transport=transport,
        target=target,
        calls_requested=len(results),
        concurrency=concurrency,
        wall_s=round(wall_s, 3),
        attempted=len(attempted),
        answered=len(answered),
        failed=len(failed),
        not_started=len(results) - len(attempted),
        failure_reasons=dict(Counter(r.reason or "unknown" for r in failed).most_common()),
        latency_ms=lat,
        audio_s=audio,
        silent_calls=sum(1 for r in answered if r.audio.loud_seconds == 0.0),
        calls=results,
    )


def _ms(v: float | int | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def format_report(report: LoadReport) -> str:
    """The report as a few lines of text for a terminal."""
    lat, audio = report.latency_ms, report.audio_s
    lines = [
        f"load test: {report.transport} → {report.target}, {report.calls_requested} calls, "
        f"concurrency {report.concurrency}, {report.wall_s:.1f} s",
        f"calls: attempted {report.attempted}, answered {report.answered}, failed {report.failed}"
        + (f", not started {report.not_started}" if report.not_started else ""),
    ]
    if report.failure_reasons:
        reasons = ", ".join(f"{reason} ×{n}" for reason, n in report.failure_reasons.items())
        lines.append(f"failures: {reasons}")
    lines.append(
        f"latency (end of speech → first agent audio): {lat['turns']} turns, median {_ms(lat['median'])} ms, "
        f"p95 {_ms(lat['p95'])} ms, max {_ms(lat['max'])} ms"
    )
    lines.append(
        f"audio received per answered call: median {_s(audio['median'])} s (min {_s(audio['min'])}), "
        f"audible median {_s(audio['loud_median'])} s (min {_s(audio['loud_min'])}), "
        f"RMS median {_ms(audio['rms_median'])}"
    )
    if report.silent_calls:
        lines.append(f"WARNING: {report.silent_calls} answered call(s) received only silence")
    lines.append("per call:")
    for c in report.calls:
        lines.append("  " + _call_line(c))
    lines.append("result: " + ("OK, every call was answered" if report.ok else "NOT OK"))
    return "\n".join(lines)


def _call_line(c: CallResult) -> str:
    if c.outcome != "answered":
        return f"#{c.index:<3} {c.outcome}" + (f": {c.reason}" if c.reason else "")
    lat = ", ".join(f"{ms:.0f}" for ms in c.latencies_ms) or "-"
    dur = (c.ended_at or 0.0) - (c.answered_at or 0.0)
    parts = [
        f"#{c.index:<3} answered {c.call_id or ''}".rstrip(),
        f"setup {_ms(c.setup_ms)} ms",
        f"{dur:.1f} s",
        f"turns {c.turns_played}",
        f"latency ms [{lat}]",
        f"audio {c.audio.seconds:.1f} s (audible {c.audio.loud_seconds:.1f} s, RMS {c.audio.rms:.0f})",
    ]
    if c.end_reason:
        parts.append(f"ended: {c.end_reason}")
    if c.errors:
        parts.append(f"errors: {'; '.join(c.errors[:3])}")
    return ", ".join(parts)
