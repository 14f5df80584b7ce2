"""Helpers for the local engine's HTTP tests: serving the engine app on 127.0.0.1 (port 0) under ``/v1``, as
the official SDK expects, and reading SSE bytes. The fixtures live in ``http_fixtures``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from openai import AsyncOpenAI

from voicebot.config import Settings
from voicebot.local import keys
from voicebot.local.app import create_engine_app
from voicebot.local.speech import SpeechStack

LOCAL_TOKEN = "sk-local-secret-token"


@dataclass(frozen=True)
class Engine:
    base_url: str  # http://127.0.0.1:PORT/v1

    def client(self, api_key: str = "sk-test") -> AsyncOpenAI:
        return AsyncOpenAI(api_key=api_key, base_url=self.base_url, max_retries=0)


async def serve(settings: Settings, stack: SpeechStack) -> tuple[web.AppRunner, Engine]:
    engine_app = create_engine_app(settings)
    engine_app[keys.SPEECH] = stack  # lent: the app uses it and leaves it open
    root = web.Application()
    root.add_subapp("/v1", engine_app)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, Engine(f"http://127.0.0.1:{port}/v1")


def parse_sse(text: str) -> list[tuple[str | None, dict[str, Any]]]:
    """``(event name or None, data)`` per SSE frame; asserts the framing is exact (blank-line separated)."""
    assert text.endswith("\n\n"), "every SSE frame ends with a blank line"
    frames: list[tuple[str | None, dict[str, Any]]] = []
    for block in text[:-2].split("\n\n"):
        name: str | None = None
        data: str | None = None
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                assert data is None, "one data line per frame"
                data = value
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
        assert data is not None
        frames.append((name, json.loads(data)))
    return frames
