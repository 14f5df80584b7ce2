"""Offline speech for the embedded local engine: VAD, STT and TTS in tiers chosen by what imports.

=====  =============================================  ==========================================
role   best tier                                      fallbacks
=====  =============================================  ==========================================
VAD    silero v6 ONNX (faster-whisper's asset)        webrtcvad (mode 3, 20 ms), numpy energy
STT    faster-whisper + tiny.en int8                  pocketsphinx en-us
TTS    piper + en_US-joe-medium (worker process)      espeak-ng via espeakng-loader (worker)
=====  =============================================  ==========================================

See docs/speech.md for how tiers are chosen and what they cost.
"""

from voicebot.local.speech.stack import SpeechStack, describe_available
from voicebot.local.speech.types import FrameVad, Segment, SpeechBackendError, TranscriptionResult, Word

__all__ = [
    "FrameVad",
    "Segment",
    "SpeechBackendError",
    "SpeechStack",
    "TranscriptionResult",
    "Word",
    "describe_available",
]
