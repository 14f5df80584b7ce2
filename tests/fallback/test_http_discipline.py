"""Timeouts, retries and error reporting of the non-realtime path, through the official SDK against the local
engine with scripted HTTP faults (``HttpFaults``): 429 + retry-after is retried after the server's delay, a 400
is not retried, errors carry the upstream's message, code and x-request-id, quota errors are fatal."""

from __future__ import annotations

import time

import pytest

from tests.fallback.conftest import Engine
from voicebot.audio.chunk import PcmChunk
from voicebot.errors import FatalUpstreamError, RetryableUpstreamError
from voicebot.fallback.openai_http import (
    FatalHttpError,
    RejectedHttpError,
    RetryableHttpError,
    speak,
    transcribe,
    translated,
)
from voicebot.local.faults import HttpFault

pytestmark = [pytest.mark.asyncio(loop_scope="package")]

HELLO = "Hello there"


async def test_429_with_retry_after_is_retried_after_the_servers_delay(engine: Engine) -> None:
    engine.http_faults.add(HttpFault("/responses", 429, retry_after="1.2", code="rate_limit_exceeded"))
    client = engine.client(max_retries=2)
    started = time.monotonic()
    with translated("responses"):
        response = await client.responses.create(model="gpt-4.1-mini", input=HELLO)
    elapsed = time.monotonic() - started
    await client.close()
    assert response.output_text
    assert engine.http_faults.count("/responses") == 2
    # the SDK's own first backoff is at most 0.5 s: waiting 1.2 s means retry-after was honoured
    assert 1.2 <= elapsed < 5.0


async def test_400_is_not_retried_and_the_error_carries_message_code_and_request_id(engine: Engine) -> None:
    engine.http_faults.add(
        HttpFault("/responses", 400, times=5, code="invalid_value", message="Bad input, injected.")
    )
    client = engine.client(max_retries=3)
    with pytest.raises(RejectedHttpError) as caught, translated("responses"):
        await client.responses.create(model="gpt-4.1-mini", input=HELLO)
    await client.close()
    err = caught.value
    assert engine.http_faults.count("/responses") == 1
    assert err.status == 400 and err.code == "invalid_value"
    assert err.upstream_message == "Bad input, injected."
    assert err.request_id is not None and err.request_id.startswith("req_")
    assert err.request_id in err.message and "Bad input, injected." in err.message
    assert not isinstance(err, RetryableUpstreamError | FatalUpstreamError)


async def test_5xx_is_retried_then_reported_as_retryable(engine: Engine) -> None:
    engine.http_faults.add(HttpFault("/audio/transcriptions", 503, times=5, retry_after="0.05"))
    client = engine.client(max_retries=2)
    with pytest.raises(RetryableHttpError) as caught:
        await transcribe(client, PcmChunk.silence(500, 16000), model="gpt-4o-mini-transcribe")
    await client.close()
    assert engine.http_faults.count("/audio/transcriptions") == 3  # the first try and two retries
    assert caught.value.status == 503 and caught.value.request_id


async def test_a_transient_error_is_invisible_to_the_caller(engine: Engine) -> None:
    engine.http_faults.add(HttpFault("/audio/speech", 500, retry_after="0.05"))
    client = engine.client(max_retries=2)
    chunks = [c async for c in speak(client, "Hello there.", model="gpt-4o-mini-tts", voice="marin")]
    await client.close()
    audio = PcmChunk.concat(chunks, rate=24000)
    assert audio.duration_ms > 300 and audio.rms() > 300
    assert engine.http_faults.count("/audio/speech") == 2


async def test_insufficient_quota_is_fatal(engine: Engine) -> None:
    engine.http_faults.add(
        HttpFault(
            "/responses", 429, type="insufficient_quota", code="insufficient_quota", message="No quota."
        )
    )
    client = engine.client(max_retries=0)
    with pytest.raises(FatalHttpError) as caught, translated("responses"):
        await client.responses.create(model="gpt-4.1-mini", input=HELLO)
    await client.close()
    assert caught.value.code == "insufficient_quota" and caught.value.status == 429


async def test_an_unreachable_upstream_times_out_as_retryable() -> None:
    # a port nobody listens on (bound then closed): connection refused, retried, then reported
    import socket

    from voicebot.fallback.openai_http import make_client

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = make_client(f"http://127.0.0.1:{port}/v1", "sk-test", max_retries=1, connect_timeout_s=1.0)
    with pytest.raises(RetryableHttpError) as caught, translated("responses"):
        await client.responses.create(model="gpt-4.1-mini", input=HELLO)
    await client.close()
    assert caught.value.status is None and "responses failed" in caught.value.message
