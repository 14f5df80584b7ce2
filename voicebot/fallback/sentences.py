"""Cut streamed model text into speakable pieces (pure).

The cascade sends each piece to the speech endpoint as soon as it is complete, so the first audio starts
after the first sentence instead of after the whole answer. A piece ends at ``.``, ``!``, ``?`` or ``…``
followed by white space (or a line break); a run-on text is cut at the last comma or space once it grows
past ``max_chars``, so one long sentence cannot hold back the audio.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?…]+[\"')\]]*\s+|\n+")
_SOFT = re.compile(r"[,;:]\s+")


class SentenceSplitter:
    """Feed text deltas with ``push``; take complete pieces from its result and the rest from ``flush``."""

    def __init__(self, *, max_chars: int = 240, min_chars: int = 2) -> None:
        if max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        self.max_chars = max_chars
        self.min_chars = min_chars
        self._buf = ""

    def push(self, delta: str) -> list[str]:
        self._buf += delta
        out: list[str] = []
        while True:
            piece = self._take()
            if piece is None:
                return out
            if piece:
                out.append(piece)

    def _take(self) -> str | None:
        """The next complete piece ("" for a piece too short to speak), or None when none is complete."""
        for match in _END.finditer(self._buf):
            head = self._buf[: match.end()].strip()
            if len(head) < self.min_chars and match.end() < len(self._buf):
                continue  # "A." alone: keep it with what follows
            self._buf = self._buf[match.end() :]
            return head
        if len(self._buf) <= self.max_chars:
            return None
        window = self._buf[: self.max_chars]
        soft = list(_SOFT.finditer(window))
        cut = soft[-1].end() if soft else window.rfind(" ") + 1
        if cut <= 0:
            cut = self.max_chars
        head, self._buf = self._buf[:cut].strip(), self._buf[cut:]
        return head

    def flush(self) -> str | None:
        """What is left (the last sentence, often without a final stop), or None."""
        rest, self._buf = self._buf.strip(), ""
        return rest or None

    @property
    def pending(self) -> str:
        return self._buf
