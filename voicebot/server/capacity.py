"""One cap on concurrent calls for the whole server, browser and phone alike (``Settings.max_calls``)."""

from __future__ import annotations

from aiohttp import web

from voicebot.errors import CapacityError


class CallSlots:
    """Counts calls in progress; ``acquire`` refuses with ``CapacityError`` (→ HTTP 503 / SIP 503) when full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def acquire(self) -> None:
        if self.in_use >= self.limit:
            raise CapacityError(f"the server is full ({self.limit} calls in progress); try again in a moment")
        self.in_use += 1

    def release(self) -> None:
        if self.in_use <= 0:
            raise RuntimeError("CallSlots.release without a matching acquire")
        self.in_use -= 1


CALL_SLOTS = web.AppKey("call_slots", CallSlots)
