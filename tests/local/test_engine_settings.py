"""The local engine's Settings (``local_rules_path``, ``local_record_dir``, ``local_replay_path``,
``local_stt`` / ``local_tts`` / ``local_vad``) take effect when the engine app starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from tests.local.realtime_helpers import Served, connect, serve_engine
from voicebot.config import Settings
from voicebot.errors import ConfigError
from voicebot.local import keys
from voicebot.local.app import create_engine_app
from voicebot.local.brain import DEFAULT_RULES_PATH, RulesConfig
from voicebot.local.record import Recording
from voicebot.local.speech import SpeechStack

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _answer(settings: Settings, stack: SpeechStack, text: str) -> str:
    served = await serve_engine(settings, stack)
    try:
        async with served.client() as client:
            response = await client.responses.create(model="gpt-5", input=text)
    finally:
        await served.runner.cleanup()
    message = response.output[0]
    assert isinstance(message, ResponseOutputMessage)
    part = message.content[0]
    assert isinstance(part, ResponseOutputText)
    return part.text


async def test_rules_path_loads_the_rules_into_the_brain(speech_stack: SpeechStack) -> None:
    joke = next(
        r.reply for r in RulesConfig.load(DEFAULT_RULES_PATH).rules if r.pattern.search("tell me a joke")
    )
    assert joke is not None
    with_rules = await _answer(Settings(local_rules_path=DEFAULT_RULES_PATH), speech_stack, "Tell me a joke")
    without = await _answer(Settings(), speech_stack, "Tell me a joke")
    assert with_rules == joke
    assert without != joke


async def test_a_broken_rules_file_fails_startup(speech_stack: SpeechStack, tmp_path: Path) -> None:
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps({"rules": [{"pattern": "(unclosed", "reply": "x"}]}))
    with pytest.raises(ConfigError, match=r"cannot load the brain rules file .*bad pattern"):
        await serve_engine(Settings(local_rules_path=bad), speech_stack)
    with pytest.raises(ConfigError, match="does not exist"):
        await serve_engine(Settings(local_replay_path=tmp_path / "none.jsonl"), speech_stack)


async def test_record_dir_records_and_replay_path_replays(speech_stack: SpeechStack, tmp_path: Path) -> None:
    record_dir = tmp_path / "new" / "recordings"  # created at startup
    served = await serve_engine(Settings(local_record_dir=record_dir), speech_stack)
    try:
        async with connect(served) as (conn, events):
            created = await events.next()
            await conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
            updated = await events.until("session.updated")
    finally:
        await served.runner.cleanup()
    session_id = created["session"]["id"]
    files = list(record_dir.iterdir())
    assert [f.name for f in files] == [f"{session_id}.jsonl"]
    recording = Recording.load(files[0])
    assert [json.loads(t)["type"] for t in recording.server_frames()][:2] == [
        "session.created",
        "session.updated",
    ]

    replayed = await serve_engine(Settings(local_replay_path=files[0]), speech_stack)
    try:
        async with connect(replayed) as (conn, events):
            again = await events.next()
            await conn.session.update(session={"type": "realtime", "instructions": "Be brief."})
            again_updated = await events.until("session.updated")
    finally:
        await replayed.runner.cleanup()
    assert again == created
    assert again_updated[-1] == updated[-1]


@pytest.mark.slow
async def test_speech_tier_settings_choose_the_stack() -> None:
    settings = Settings(local_vad="energy", local_stt="pocketsphinx", local_tts="espeak")
    engine_app = create_engine_app(settings)  # no lent stack: the engine creates (and owns) its own
    root = web.Application()
    root.add_subapp("/v1", engine_app)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        stack = engine_app[keys.SPEECH]
        assert stack.info["vad"] == "energy"
        assert stack.info["stt"].startswith("pocketsphinx")
        assert stack.info["tts"].startswith("espeak-ng")
        served = Served(runner, runner.addresses[0][1])
        async with served.client() as client:
            speech = await client.audio.speech.create(
                model="gpt-4o-mini-tts", voice="alloy", input="Hello there.", response_format="pcm"
            )
            assert len(speech.content) > 24000  # over half a second of 24 kHz s16 audio
    finally:
        await runner.cleanup()
