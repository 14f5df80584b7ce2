from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.config import Settings, settings_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_doc_lists_every_setting() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert settings_markdown() in doc, (
        "docs/configuration.md is stale: regenerate with python -m voicebot.config"
    )


def test_local_engine_is_the_upstream_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    up = Settings().upstream("http://127.0.0.1:9000")
    assert up.local
    assert up.base_url == "http://127.0.0.1:9000/v1"
    assert up.websocket_base_url == "ws://127.0.0.1:9000/v1"


def test_openai_key_and_base_url_select_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    up = Settings().upstream("http://127.0.0.1:9000")
    assert not up.local
    assert up.base_url == "https://api.openai.com/v1"
    assert up.websocket_base_url == "wss://api.openai.com/v1"
    assert up.api_key == "sk-real"
    monkeypatch.setenv("OPENAI_BASE_URL", "https://example.openai.azure.com/openai/v1/")
    up = Settings().upstream("http://127.0.0.1:9000")
    assert up.base_url == "https://example.openai.azure.com/openai/v1"
    assert up.websocket_base_url == "wss://example.openai.azure.com/openai/v1"


def test_env_prefix_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBOT_PORT", "9123")
    monkeypatch.setenv("VOICEBOT_SIP_PORT", "5070")
    s = Settings()
    assert (s.port, s.sip_port) == (9123, 5070)
    monkeypatch.setenv("VOICEBOT_PORT", "99999")
    with pytest.raises(ValueError, match="port"):
        Settings()
