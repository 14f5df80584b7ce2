"""Playback accounting for assistant audio (pure).

An audio port tells the ledger what it queued and what it actually sent to the listener, per assistant item.
On barge-in the port drops its queue (``drop_queued``) and the call asks ``played_ms(item_id)``: the whole
milliseconds of that item the listener really heard, which is what ``conversation.item.truncate`` needs.
Counts are kept as exact fractions of a second, so mixing sample rates never rounds twice.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from math import floor

_ZERO = Fraction(0)


@dataclass(slots=True)
class _ItemTally:
    queued: Fraction = _ZERO  # seconds handed to the port and not yet played or dropped
    played: Fraction = _ZERO  # seconds actually sent out


class PlayoutLedger:
    """Per-item queued and played audio, remembering the last ``max_items`` items."""

    def __init__(self, max_items: int = 64) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._max_items = max_items
        self._items: OrderedDict[str, _ItemTally] = OrderedDict()

    def _tally(self, item_id: str) -> _ItemTally:
        tally = self._items.get(item_id)
        if tally is None:
            tally = self._items[item_id] = _ItemTally()
            while len(self._items) > self._max_items:
                self._items.popitem(last=False)
        return tally

    @staticmethod
    def _seconds(samples: int, rate: int) -> Fraction:
        if samples < 0:
            raise ValueError(f"sample count must not be negative, got {samples}")
        if rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        return Fraction(samples, rate)

    def queued(self, item_id: str, samples: int, rate: int) -> None:
        """``samples`` of ``item_id`` at ``rate`` Hz entered the port's output queue."""
        self._tally(item_id).queued += self._seconds(samples, rate)

    def played(self, item_id: str, samples: int, rate: int) -> None:
        """``samples`` of ``item_id`` at ``rate`` Hz went out to the listener (moves them off the queue)."""
        amount = self._seconds(samples, rate)
        tally = self._tally(item_id)
        tally.played += amount
        tally.queued = max(_ZERO, tally.queued - amount)

    def drop_queued(self) -> dict[str, int]:
        """Barge-in: forget everything still queued. Returns the dropped whole ms per item (non-zero only)."""
        dropped: dict[str, int] = {}
        for item_id, tally in self._items.items():
            if tally.queued:
                dropped[item_id] = floor(tally.queued * 1000)
                tally.queued = _ZERO
        return dropped

    def played_ms(self, item_id: str) -> int:
        """Whole milliseconds of ``item_id`` that were played (0 for an unknown item); never overstates."""
        tally = self._items.get(item_id)
        return floor(tally.played * 1000) if tally else 0

    def queued_ms(self, item_id: str | None = None) -> int:
        """Whole milliseconds still queued for ``item_id`` (or for all items when None)."""
        if item_id is not None:
            tally = self._items.get(item_id)
            return floor(tally.queued * 1000) if tally else 0
        return floor(sum((t.queued for t in self._items.values()), _ZERO) * 1000)

    def forget(self, item_id: str) -> None:
        self._items.pop(item_id, None)
