"""Trunk registration: sipp plays the registrar, challenges with MD5 digest (qop=auth) and checks our answer
with its own verifyauth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.sip_e2e.conftest import BotFactory
from tests.sip_e2e.sipp import SIPP, free_udp_port, run_sipp, scenario
from voicebot.sip.auth import Registered, RegistrationFailed

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.skipif(SIPP is None, reason="sipp is not installed (Debian package sip-tester)"),
]


async def register_against_sipp(make_bot: BotFactory, tmp_path: Path, password: str) -> object:
    port = free_udp_port()
    registrar = asyncio.create_task(
        run_sipp(
            scenario("registrar.xml", tmp_path),
            ("127.0.0.1", 5060),  # unused by a UAS scenario
            cwd=tmp_path,
            local_port=port,
            keys={"username": "bot", "password": "s3cret"},
            limit_s=15,
        )
    )
    await asyncio.sleep(0.3)  # sipp binds its port
    bot = await make_bot(
        sip_register_uri=f"sip:127.0.0.1:{port}",
        sip_register_username="bot",
        sip_register_password=password,
        sip_register_expires=300,
    )
    async with asyncio.timeout(10):
        while bot.service.registration is None:
            await asyncio.sleep(0.02)
    result = await registrar
    assert result.rc == 0, result.explain()
    return bot.service.registration


async def test_register_answers_the_digest_challenge(make_bot: BotFactory, tmp_path: Path) -> None:
    outcome = await register_against_sipp(make_bot, tmp_path, "s3cret")
    assert outcome == Registered(expires=120), "the registrar's 200 granted expires=120 on our Contact"


async def test_register_with_a_wrong_password_fails(make_bot: BotFactory, tmp_path: Path) -> None:
    outcome = await register_against_sipp(make_bot, tmp_path, "wrong")
    assert isinstance(outcome, RegistrationFailed) and outcome.status == 403
