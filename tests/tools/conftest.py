from __future__ import annotations

from typing import Any

import pytest


class FakeCall:
    """The Call's side of CallControl for tests: records every request, in order."""

    def __init__(self, call_id: str = "call-1", caller: str = "sip:alice@example.com") -> None:
        self.call_id = call_id
        self.caller = caller
        self.actions: list[tuple[str, Any]] = []
        self.fail_update = False

    async def hang_up(self, reason: str) -> None:
        self.actions.append(("hang_up", reason))

    async def transfer(self, target: str) -> None:
        self.actions.append(("transfer", target))

    async def send_dtmf(self, digits: str) -> None:
        self.actions.append(("send_dtmf", digits))

    async def say(self, text: str) -> None:
        self.actions.append(("say", text))

    async def update_session(
        self, *, instructions: str | None, tools: list[dict[str, Any]] | None, voice: str | None
    ) -> None:
        if self.fail_update:
            raise ConnectionError("upstream refused session.update")
        self.actions.append(
            ("update_session", {"instructions": instructions, "tools": tools, "voice": voice})
        )

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.actions]


@pytest.fixture
def control() -> FakeCall:
    return FakeCall()
