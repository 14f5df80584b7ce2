"""The local engine's HTTP surface: error bodies and the SDK's exception classes, auth, headers, models,
client secrets and the retired beta route."""

from __future__ import annotations

import os
import time
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from openai.types.realtime import ClientSecretCreateResponse

from tests.local.http_support import LOCAL_TOKEN, Engine
from voicebot.config import Settings
from voicebot.local import keys
from voicebot.local.app import create_engine_app
from voicebot.local.http_errors import add_engine_headers, engine_middleware

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")

ERROR_KEYS = {"message", "type", "param", "code"}


def assert_engine_headers(headers: Any) -> None:
    assert headers["x-request-id"].startswith("req_") and len(headers["x-request-id"]) > 10
    for name in (
        "limit-requests",
        "remaining-requests",
        "reset-requests",
        "limit-tokens",
        "remaining-tokens",
    ):
        assert f"x-ratelimit-{name}" in headers


# errors and headers --------------------------------------------------------------------------------------
async def test_unknown_route_under_v1_is_a_404_in_the_standard_body(
    http: aiohttp.ClientSession, engine: Engine
) -> None:
    async with http.post(f"{engine.base_url}/chat/completions/nope", json={}) as resp:
        assert resp.status == 404
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert_engine_headers(resp.headers)
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["message"] == "Invalid URL (POST /v1/chat/completions/nope)"


async def test_sdk_maps_a_404_to_not_found_error(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.get("/no/such/route", cast_to=object)
    assert info.value.status_code == 404
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")


async def test_wrong_method_is_a_405_in_the_standard_body(
    http: aiohttp.ClientSession, engine: Engine
) -> None:
    async with http.get(f"{engine.base_url}/audio/speech") as resp:
        assert resp.status == 405
        body = await resp.json()
    assert set(body["error"]) == ERROR_KEYS and "Invalid method" in body["error"]["message"]


async def test_every_response_kind_carries_request_id_and_rate_limit_headers(
    http: aiohttp.ClientSession, engine: Engine
) -> None:
    async with http.get(f"{engine.base_url}/models") as ok:
        assert_engine_headers(ok.headers)
        first = ok.headers["x-request-id"]
    async with http.post(
        f"{engine.base_url}/responses", json={"model": "m", "input": "hi", "stream": True}
    ) as sse:
        await sse.read()
        assert_engine_headers(sse.headers)
        assert sse.headers["x-request-id"] != first
    async with http.post(f"{engine.base_url}/responses", json={"input": "hi"}) as bad:
        assert bad.status == 400
        assert_engine_headers(bad.headers)


async def test_missing_bearer_is_a_401_saying_so(engine: Engine) -> None:
    async with aiohttp.ClientSession() as anon, anon.get(f"{engine.base_url}/models") as resp:
        assert resp.status == 401
        body = await resp.json()
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["message"].startswith("You didn't provide an API key.")


async def test_any_bearer_is_accepted_without_a_local_token(engine: Engine) -> None:
    async with engine.client(api_key="anything-at-all") as c:
        models = await c.models.list()
    assert "gpt-realtime" in [m.id for m in models.data]


async def test_local_token_refuses_a_wrong_key_with_invalid_api_key(token_engine: Engine) -> None:
    async with token_engine.client(api_key="sk-wrong-key-123456") as c:
        with pytest.raises(openai.AuthenticationError) as info:
            await c.models.list()
    assert info.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in info.value.message  # the key is masked
    async with token_engine.client(api_key=LOCAL_TOKEN) as c:
        assert (await c.models.retrieve("whisper-1")).id == "whisper-1"


async def test_client_secret_is_accepted_as_bearer_by_a_token_engine(token_engine: Engine) -> None:
    async with token_engine.client(api_key=LOCAL_TOKEN) as c:
        secret = await c.realtime.client_secrets.create(session={"type": "realtime"})
    async with token_engine.client(api_key=secret.value) as c:
        assert (await c.models.list()).data


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def boom_midstream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(b"first part")
    raise RuntimeError("a bug after the headers went out")


async def serve_buggy_app() -> tuple[web.AppRunner, str]:
    app = web.Application(middlewares=[engine_middleware])
    app[keys.ENGINE_SETTINGS] = Settings(local_token=None)
    app.on_response_prepare.append(add_engine_headers)
    app.router.add_get("/v1/boom", boom)
    app.router.add_get("/v1/boom-midstream", boom_midstream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"


async def test_unexpected_exception_becomes_a_500_standard_body() -> None:
    runner, url = await serve_buggy_app()
    try:
        async with AsyncOpenAI(api_key="sk-test", base_url=url, max_retries=0) as c:
            with pytest.raises(openai.InternalServerError) as info:
                await c.get("/boom", cast_to=object)
        assert info.value.status_code == 500
        assert isinstance(info.value.body, dict) and set(info.value.body) == ERROR_KEYS
        assert info.value.body["type"] == "server_error"
    finally:
        await runner.cleanup()


async def test_exception_after_the_headers_cuts_the_transfer_and_the_server_goes_on() -> None:
    runner, url = await serve_buggy_app()
    try:
        async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-test"}) as http:
            async with http.get(f"{url}/boom-midstream") as resp:
                assert resp.status == 200
                with pytest.raises(aiohttp.ClientPayloadError):
                    await resp.read()
            async with http.get(f"{url}/boom") as again:
                assert again.status == 500
                assert set((await again.json())["error"]) == ERROR_KEYS
    finally:
        await runner.cleanup()


# models --------------------------------------------------------------------------------------------------
async def test_models_list_and_retrieve(client: AsyncOpenAI) -> None:
    listed = await client.models.list()
    ids = [m.id for m in listed.data]
    assert {"gpt-realtime", "whisper-1", "gpt-4o-mini-tts"} <= set(ids)
    one = await client.models.retrieve("gpt-realtime")
    assert one.id == "gpt-realtime" and one.object == "model"
    with pytest.raises(openai.NotFoundError) as info:
        await client.models.retrieve("gpt-99")
    assert info.value.code == "model_not_found"


# realtime REST -------------------------------------------------------------------------------------------
async def test_client_secret_carries_the_full_session(
    client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    session = {
        "type": "realtime",
        "model": "gpt-realtime",
        "instructions": "Be brief.",
        "audio": {"output": {"voice": "cedar"}},
    }
    secret = await client.realtime.client_secrets.create(
        session=session,  # type: ignore[arg-type]
        expires_after={"anchor": "created_at", "seconds": 120},
    )
    assert secret.value.startswith("ek_") and len(secret.value) == 3 + 32
    raw = secret.model_dump()
    ClientSecretCreateResponse.model_validate(raw)
    s = raw["session"]
    assert s["object"] == "realtime.session" and s["id"].startswith("sess_")
    assert s["instructions"] == "Be brief." and s["audio"]["output"]["voice"] == "cedar"
    assert s["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert s["tools"] == [] and s["output_modalities"] == ["audio"]
    assert abs(secret.expires_at - time.time() - 120) < 5


async def test_transcription_client_secret(client: AsyncOpenAI) -> None:
    secret = await client.realtime.client_secrets.create(
        session={"type": "transcription", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}
    )
    ClientSecretCreateResponse.model_validate(secret.model_dump())
    assert secret.session.type == "transcription"


@pytest.mark.parametrize(
    ("session", "param", "code"),
    [
        ({"model": "gpt-realtime"}, "session.type", "missing_required_parameter"),
        ({"type": "session"}, "session.type", "invalid_value"),
        ({"type": "realtime", "modalities": ["audio"]}, "session.modalities", "unknown_parameter"),
    ],
)
async def test_client_secret_session_is_validated_like_session_update(
    client: AsyncOpenAI, session: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.realtime.client_secrets.create(session=session)  # type: ignore[arg-type]
    assert info.value.param == param and info.value.code == code


async def test_client_secret_ttl_out_of_range_is_refused(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.realtime.client_secrets.create(expires_after={"anchor": "created_at", "seconds": 5})
    assert info.value.param == "expires_after.seconds"


async def test_beta_sessions_route_is_disabled(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.post("/realtime/sessions", body={"model": "gpt-4o-realtime-preview"}, cast_to=object)
    assert info.value.code == "beta_api_shape_disabled"


# lifetime ------------------------------------------------------------------------------------------------
async def test_engine_app_creates_one_stack_and_closes_it_on_shutdown() -> None:
    engine_app = create_engine_app(Settings(local_token=None))
    root = web.Application()
    root.add_subapp("/v1", engine_app)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        stack = engine_app[keys.SPEECH]
        assert engine_app[keys.SPEECH_OWNED] is True
        pids = stack.tts_worker_pids
        assert pids and all(process_alive(pid) for pid in pids)
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        async with AsyncOpenAI(api_key="sk-test", base_url=url, max_retries=0) as c:
            speech = await c.audio.speech.create(
                model="tts-1", voice="alloy", input="Hi.", response_format="pcm"
            )
        assert len(speech.content) > 2400
    finally:
        await runner.cleanup()
    assert not any(process_alive(pid) for pid in pids)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
