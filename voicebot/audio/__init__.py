"""Audio core (pure): PcmChunk, streaming resamplers, G.711, WAV."""

from voicebot.audio.chunk import FRAME_MS, FrameSplitter, PcmChunk, ms_to_samples, samples_to_ms
from voicebot.audio.g711 import (
    G711_RATE,
    alaw_decode,
    alaw_encode,
    alaw_to_chunk,
    chunk_to_alaw,
    chunk_to_ulaw,
    ulaw_decode,
    ulaw_encode,
    ulaw_to_chunk,
)
from voicebot.audio.resample import (
    BACKENDS,
    DEFAULT_BACKEND,
    StreamResampler,
    expected_output_samples,
    resample,
)
from voicebot.audio.wav import WavError, read_wav, wav_bytes, write_wav

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "FRAME_MS",
    "G711_RATE",
    "FrameSplitter",
    "PcmChunk",
    "StreamResampler",
    "WavError",
    "alaw_decode",
    "alaw_encode",
    "alaw_to_chunk",
    "chunk_to_alaw",
    "chunk_to_ulaw",
    "expected_output_samples",
    "ms_to_samples",
    "read_wav",
    "resample",
    "samples_to_ms",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_to_chunk",
    "wav_bytes",
    "write_wav",
]
