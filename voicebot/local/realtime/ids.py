"""Random ids in the Realtime API's shapes (``event_`` + 21 base62 characters, ...) (pure).

Seed the factory to make a session's ids reproducible (tests, recordings).
"""

from __future__ import annotations

import random
import secrets
import string

BASE62 = string.digits + string.ascii_letters


class IdFactory:
    """Makes ids like ``event_Ct1OqH0yJzqJm6mUu3GxA``; ``seed`` makes the sequence deterministic."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng: random.Random | None = random.Random(seed) if seed is not None else None

    def _chars(self, n: int) -> str:
        if self._rng is not None:
            return "".join(self._rng.choice(BASE62) for _ in range(n))
        return "".join(secrets.choice(BASE62) for _ in range(n))

    def make(self, prefix: str, n: int = 21) -> str:
        return prefix + self._chars(n)

    def event(self) -> str:
        return self.make("event_")

    def item(self) -> str:
        return self.make("item_")

    def response(self) -> str:
        return self.make("resp_")

    def call(self) -> str:
        return self.make("call_", 16)

    def obfuscation(self, length: int) -> str:
        """Padding like the GA server's ``obfuscation`` field on delta events."""
        return self._chars(max(1, min(16, 16 - length % 16)))
