"""Audio core (pure): PcmChunk, streaming resamplers, G.711, WAV."""

from voicebot.audio.chunk import FRAME_MS, FrameSplitter, PcmChunk, ms_to_samples, samples_to_ms

__all__ = ["FRAME_MS", "FrameSplitter", "PcmChunk", "ms_to_samples", "samples_to_ms"]
