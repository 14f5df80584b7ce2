"""A streaming polyphase FIR resampler in plain numpy (one of the ``StreamResampler`` backends).

Resampling by ``out/in`` is done as: upsample by ``L`` (zero stuffing), low-pass at the lower of the two
Nyquist frequencies, downsample by ``M``, where ``L/M`` is ``out/in`` in lowest terms. Only the output
samples that are kept are computed, each as one dot product of ``2K+1`` input samples with one phase of the
filter (the classic polyphase decomposition).

The filter is a Kaiser-windowed sinc, linear phase and centred, and the output is **aligned** with the input:
output sample ``n`` is the band-limited input evaluated at time ``n / out_rate``. That costs a look-ahead
of ``K`` input samples (the latency of this backend) and nothing else: an output sample is emitted as soon
as the input it needs has arrived. Samples before the start of the stream are zeros; ``flush`` feeds zeros
after the end.

Every output sample is computed the same way whatever the chunking (same inputs, same coefficients, same
summation order), so chunked processing is bit-identical to processing the whole signal at once.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Stop-band attenuation of the anti-alias / anti-image filter, in dB.
STOPBAND_DB = 90.0
#: Pass band edge and stop band edge as fractions of the lower sample rate (Nyquist is 0.5).
PASS_EDGE = 0.45
STOP_EDGE = 0.5
#: Up to this many filter phases, outputs are computed phase by phase over strided views (no gather).
_MAX_LOOPED_PHASES = 8


def design(in_rate: int, out_rate: int) -> tuple[int, int, int, FloatArray]:
    """Return ``(L, M, K, phases)``: ``phases[r, t]`` multiplies input ``q_hi - t`` for output phase ``r``."""
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    f_low = min(in_rate, out_rate)
    fs_up = in_rate * up  # the rate of the (virtual) zero-stuffed signal
    width = (STOP_EDGE - PASS_EDGE) * f_low / fs_up  # transition width, cycles per upsampled sample
    cutoff = (STOP_EDGE + PASS_EDGE) / 2 * f_low / fs_up
    # Kaiser's estimates for the window parameter and the filter length.
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    length = (STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * width) + 1
    half = max(1, math.ceil(length / (2 * up)))  # K: taps each side of centre, in input samples
    centre = up * half
    n = np.arange(2 * centre + 1, dtype=np.float64)
    h = 2 * cutoff * np.sinc(2 * cutoff * (n - centre)) * np.kaiser(2 * centre + 1, beta)
    h *= up / h.sum()  # unity gain at DC after zero stuffing
    taps = 2 * half + 1
    padded = np.zeros(up * taps, dtype=np.float64)
    padded[: h.shape[0]] = h
    # phases[r, t] = h[r + up * t]
    phases = np.ascontiguousarray(padded.reshape(taps, up).T)
    return up, down, half, phases


class PolyphaseBackend:
    """Streaming polyphase resampler over float64 samples (full scale = 1.0)."""

    name = "numpy"

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._up, self._down, self._half, self._phases = design(in_rate, out_rate)
        self._taps = self._phases.shape[1]
        self._reversed = np.ascontiguousarray(self._phases[:, ::-1])
        # History: _buf[0] is input sample number _base (negative numbers: the zeros before the start).
        self._buf: FloatArray = np.zeros(self._taps, dtype=np.float64)
        self._base = -self._taps
        self._next_out = 0
        self._received = 0

    @property
    def latency_in_samples(self) -> int:
        """Input samples of look-ahead an output sample needs."""
        return self._half

    def process(self, x: FloatArray) -> FloatArray:
        if x.shape[0]:
            self._buf = np.concatenate([self._buf, x])
            self._received += int(x.shape[0])
        return self._compute(self._base + int(self._buf.shape[0]) - 1)

    def flush(self) -> FloatArray:
        """Outputs for every time point inside the input span, with zeros after the end."""
        pad = self._half + self._down // self._up + 2
        self._buf = np.concatenate([self._buf, np.zeros(pad, dtype=np.float64)])
        last_needed = -(-self._received * self._up // self._down)  # ceil(received * L / M) outputs
        y = self._compute(self._base + int(self._buf.shape[0]) - 1, limit=last_needed)
        return y

    def _compute(self, available: int, limit: int | None = None) -> FloatArray:
        """Every output whose newest input index is ``<= available`` (and ``< limit`` when given)."""
        up, down, half = self._up, self._down, self._half
        # output n needs input up to floor(n*M/L) + K
        stop = ((available - half + 1) * up - 1) // down + 1 if available - half + 1 > 0 else 0
        if limit is not None:
            stop = min(stop, limit)
        start = self._next_out
        if stop <= start:
            return np.zeros(0, dtype=np.float64)
        n = np.arange(start, stop, dtype=np.int64)
        pos = n * down
        phase = pos % up
        # window start (oldest input) of each output, as an index into the history buffer
        first = pos // up + half - (self._taps - 1) - self._base
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, self._taps)
        y: FloatArray
        if up > _MAX_LOOPED_PHASES:
            y = (windows[first] * self._reversed[phase]).sum(axis=1)
        else:
            # rows j0, j0 + L, j0 + 2L ... share a phase and their windows advance by M: a strided view
            y = np.empty(stop - start, dtype=np.float64)
            for j0 in range(min(up, stop - start)):
                starts = first[j0::up]
                rows = windows[starts[0] : starts[-1] + 1 : down]
                y[j0::up] = (rows * self._reversed[phase[j0]]).sum(axis=1)
        self._next_out = stop
        # keep only the history the next output still needs
        oldest_needed = (stop * down) // up + half - (self._taps - 1)
        drop = oldest_needed - self._base
        if drop > 0:
            self._buf = self._buf[drop:]
            self._base += drop
        return y
