"""Suite-wide settings."""

from __future__ import annotations

import os

# The local TTS voice speaks without its random variation in tests: the same text gives the same audio on
# every run, so a test that listens to synthesized speech hears what it heard the last time it passed.
os.environ.setdefault("VOICEBOT_LOCAL_TTS_VARIATION", "0")
