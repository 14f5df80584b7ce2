"""Micro-benchmark of the audio core: resampler backends and G.711.

Run: ``.venv/bin/python scripts/bench/audio.py`` (about 10-30 s on a small machine).

For every backend and rate pair it prints:

- ``us/frame``: CPU time to push one 20 ms input frame through ``StreamResampler.process`` (streaming, frame
  by frame, warm: the median over ``FRAMES`` frames after ``WARMUP`` untimed ones), and the ratio to the
  soxr backend measured in the same run (``x soxr``).
- ``setup us``: constructing a resampler and pushing its first frame (paid once per call and direction).
- ``lag ms``: the most output owed while streaming 20 ms frames (``StreamResampler.lag``), in ms: the
  latency the backend adds.
- ``SNR dB``: a 1 kHz tone at -6 dBFS, streamed in 20 ms frames and flushed. The backend's delay is
  compensated by fitting ``a cos + b sin + c`` at 1 kHz to the output by least squares (a delay of a pure tone
  is only a phase shift, which the fit absorbs; the fitted phase is reported as ``delay smp``, the delay in
  output samples relative to the ideal tone). SNR = power of the fitted tone / power of the residual.
  The first and last 50 ms are left out (start-up and zero-padded tail). ``SNR dB`` is measured on the int16
  output callers get (so about 93 dB, the quantisation floor, is the best possible); ``SNR flt`` on the
  backend's float output before rounding, which shows the filter's own error.
- ``pass dB``: gain for a tone at 0.4 x the lower rate (3.2 kHz for 8 kHz), i.e. the top of the pass band.
- ``spur dB``: for downsampling, a tone at 0.625 x the output rate (above the output Nyquist: 15 kHz for
  48k->24k) goes in, and the amplitude that lands at its alias ``out - f`` is measured (the same least
  squares fit at that frequency), in dB relative to the input tone. For upsampling, a tone at 0.4 x the input
  rate goes in and the level of its first image ``in - f`` (folded into the output band) is measured.
  This one is measured on the backend's float output, before rounding to int16: after rounding, anything
  below about -96 dB re. a -6 dBFS tone is just zeros, which would hide the differences between filters.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from voicebot.audio.chunk import PcmChunk
from voicebot.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicebot.audio.resample import _FACTORIES, BACKENDS, StreamResampler

PAIRS = [(48000, 24000), (24000, 48000), (8000, 24000), (24000, 8000), (16000, 24000), (24000, 16000),
         (22050, 24000)]  # fmt: skip
WARMUP = 50
FRAMES = 2000
AMPLITUDE = 16384.0  # -6 dBFS
EDGE_S = 0.05


def tone(freq: float, rate: int, seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(AMPLITUDE * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def stream(r: StreamResampler, x: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    step = r.in_rate // 50
    parts = [r.process(PcmChunk(x[i : i + step], r.in_rate)).samples for i in range(0, x.shape[0], step)]
    parts.append(r.flush().samples)
    return np.concatenate(parts)


def stream_float(
    backend: str, in_rate: int, out_rate: int, x: npt.NDArray[np.int16]
) -> npt.NDArray[np.float64]:
    """The backend's own float output (before rounding to int16), in int16 units."""
    impl = _FACTORIES[backend](in_rate, out_rate)
    step = in_rate // 50
    parts = [impl.process(x[i : i + step].astype(np.float64) / 32768) for i in range(0, x.shape[0], step)]
    parts.append(impl.flush())
    return np.concatenate(parts).astype(np.float64) * 32768


def fit(
    y: npt.NDArray[np.int16] | npt.NDArray[np.float64], freq: float, rate: int
) -> tuple[float, float, float]:
    """Least squares ``a cos + b sin + c`` at ``freq``: (amplitude, phase, residual power)."""
    edge = int(EDGE_S * rate)
    seg = y[edge : y.shape[0] - edge].astype(np.float64)
    w = 2 * np.pi * freq * (np.arange(seg.shape[0]) + edge) / rate
    basis = np.stack([np.cos(w), np.sin(w), np.ones_like(w)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, seg, rcond=None)
    resid = seg - basis @ coef
    return float(np.hypot(coef[0], coef[1])), float(np.arctan2(coef[0], coef[1])), float(np.mean(resid**2))


def fold(freq: float, rate: int) -> float:
    f = freq % rate
    return rate - f if f > rate / 2 else f


def quality(backend: str, in_rate: int, out_rate: int) -> tuple[float, float, float, float, float]:
    """(SNR of the int16 output, SNR of the float output, delay, pass band gain, spur level)."""
    x = tone(1000.0, in_rate, 1.0)
    amp, phase, noise = fit(stream(StreamResampler(in_rate, out_rate, backend=backend), x), 1000.0, out_rate)
    snr = 10 * np.log10((amp**2 / 2) / max(noise, 1e-12))
    delay = round(-phase / (2 * np.pi * 1000.0) * out_rate, 3) + 0.0  # sin(w(t - d)) has phase -w d
    famp, _, fnoise = fit(stream_float(backend, in_rate, out_rate, x), 1000.0, out_rate)
    snr_float = 10 * np.log10((famp**2 / 2) / max(fnoise, 1e-12))
    f_pass = 0.4 * min(in_rate, out_rate)
    passed, _, _ = fit(stream_float(backend, in_rate, out_rate, tone(f_pass, in_rate, 1.0)), f_pass, out_rate)
    if out_rate < in_rate:
        probe = 0.625 * out_rate
        spur_at = fold(probe, out_rate)
    else:
        probe = f_pass
        spur_at = fold(in_rate - probe, out_rate)
    spur, _, _ = fit(stream_float(backend, in_rate, out_rate, tone(probe, in_rate, 1.0)), spur_at, out_rate)
    gain = 20 * np.log10(passed / AMPLITUDE)
    return float(snr), float(snr_float), delay, float(gain), 20 * np.log10(max(spur, 1e-9) / AMPLITUDE)


def speed(backend: str, in_rate: int, out_rate: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(7)
    step = in_rate // 50
    frames = [PcmChunk((rng.standard_normal(step) * 3000).astype(np.int16), in_rate) for _ in range(64)]
    t0 = time.perf_counter_ns()
    r = StreamResampler(in_rate, out_rate, backend=backend)
    r.process(frames[0])
    setup_us = (time.perf_counter_ns() - t0) / 1000
    times: list[float] = []
    max_lag = 0
    for i in range(WARMUP + FRAMES):
        f = frames[i % len(frames)]
        t0 = time.perf_counter_ns()
        r.process(f)
        t1 = time.perf_counter_ns()
        max_lag = max(max_lag, r.lag)
        if i >= WARMUP:
            times.append((t1 - t0) / 1000)
    return statistics.median(times), setup_us, max_lag * 1000 / out_rate


def bench_g711() -> None:
    rng = np.random.default_rng(11)
    frame = (rng.standard_normal(160) * 3000).astype(np.int16)  # 20 ms at 8 kHz
    print("\nG.711, one 20 ms frame at 8 kHz (160 samples), median us:")
    ops: list[tuple[str, Callable[[], object]]] = []
    for name, enc, dec in (("ulaw", ulaw_encode, ulaw_decode), ("alaw", alaw_encode, alaw_decode)):
        data = enc(frame)
        ops.append((f"{name} encode", lambda enc=enc: enc(frame)))  # type: ignore[misc]
        ops.append((f"{name} decode", lambda dec=dec, data=data: dec(data)))  # type: ignore[misc]
    for label, op in ops:
        times = []
        for i in range(WARMUP + 5 * FRAMES):
            t0 = time.perf_counter_ns()
            op()
            if i >= WARMUP:
                times.append((time.perf_counter_ns() - t0) / 1000)
        print(f"  {label}: {statistics.median(times):6.2f} us")


def main() -> None:
    started = time.perf_counter()
    head = (
        f"{'pair':>13} {'backend':>7} {'us/frame':>9} {'x soxr':>7} {'setup us':>9} {'lag ms':>7} "
        f"{'SNR dB':>7} {'SNR flt':>7} {'delay smp':>9} {'pass dB':>8} {'spur dB':>8}"
    )
    print(head)
    print("-" * len(head))
    for in_rate, out_rate in PAIRS:
        rows = {b: (speed(b, in_rate, out_rate), quality(b, in_rate, out_rate)) for b in BACKENDS}
        base = rows["soxr"][0][0]
        for b in BACKENDS:
            (us, setup, lag), (snr, snr_float, delay, gain, spur) = rows[b]
            print(
                f"{in_rate:>6}->{out_rate:<6} {b:>7} {us:9.1f} {us / base:7.2f} {setup:9.0f} {lag:7.2f} "
                f"{snr:7.1f} {snr_float:7.1f} {delay:9.3f} {gain:8.2f} {spur:8.1f}"
            )
    bench_g711()
    print(f"\ntotal {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
