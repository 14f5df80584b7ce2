"""Settings: the only place environment variables are read.

Every option is an environment variable prefixed ``VOICEBOT_`` (``VOICEBOT_PORT=9000``), and the common ones
are CLI flags too (flags win). The upstream is OpenAI when ``OPENAI_API_KEY`` is set (``OPENAI_BASE_URL``
overrides its URL); otherwise voicebot mounts its embedded local engine under ``/v1`` and talks to itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant. Keep answers short and friendly; they are spoken aloud."
)


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where model traffic goes."""

    base_url: str  # HTTP base, ending in /v1
    websocket_base_url: str  # WebSocket base, ending in /v1
    api_key: str
    local: bool  # True: the embedded engine mounted in this app


class IceServer(BaseModel):
    """One STUN or TURN server, in the browser's ``RTCIceServer`` shape."""

    model_config = ConfigDict(extra="forbid")

    urls: str | list[str] = Field(description="'stun:host:port', 'turn:host:port?transport=udp' or a list.")
    username: str | None = Field(None, description="TURN username (unused for STUN).")
    credential: str | None = Field(None, description="TURN password (unused for STUN).")

    def url_list(self) -> list[str]:
        return [self.urls] if isinstance(self.urls, str) else list(self.urls)


class Settings(BaseSettings):
    """All voicebot settings. Field ``foo`` is env var ``VOICEBOT_FOO``."""

    model_config = SettingsConfigDict(env_prefix="VOICEBOT_", extra="ignore", populate_by_name=True)

    # server
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log verbosity.")

    # upstream
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "VOICEBOT_OPENAI_API_KEY"),
        description="OpenAI API key. Unset: the embedded local engine is the upstream.",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "VOICEBOT_OPENAI_BASE_URL"),
        description="Override the OpenAI HTTP base URL (for example an Azure-style or proxy endpoint).",
    )
    openai_websocket_base_url: str | None = Field(
        None, description="Override the Realtime WebSocket base URL (default: derived from the HTTP base)."
    )
    model: str = Field("gpt-realtime", description="Realtime model name.")
    voice: str = Field("marin", description="Voice of the agent.")
    instructions: str = Field(DEFAULT_INSTRUCTIONS, description="Default agent instructions.")
    agent: str | None = Field(None, description="Agent to load, as 'package.module:attribute'.")

    # tools
    tool_timeout_s: float = Field(10.0, gt=0, description="Default timeout of a tool call (seconds).")
    tool_filler_after_s: float | None = Field(
        1.5, gt=0, description="Say a short filler line when a tool runs longer than this (unset: never)."
    )

    # realtime client behaviour
    reconnect_attempts: int = Field(5, ge=0, description="Reconnect attempts after the upstream drops.")
    reconnect_backoff_s: float = Field(0.25, gt=0, description="First reconnect delay; doubles each try.")
    session_rollover_s: float = Field(
        55 * 60, gt=0, description="Open a fresh upstream session after this long (cap is 60 min)."
    )

    # local engine
    local_token: SecretStr | None = Field(
        None, description="Bearer token the local engine requires (unset: any bearer is accepted)."
    )
    local_max_session_s: float = Field(3600, gt=0, description="Local engine session cap (seconds).")

    # calls
    max_calls: int = Field(40, ge=1, description="Concurrent call cap; further calls get 503.")

    # WebRTC (browser calls)
    ice_servers: list[IceServer] = Field(
        default_factory=list,
        description=(
            "STUN/TURN servers for browser calls, as JSON: "
            '\'[{"urls": "turn:turn.example.com:3478", "username": "u", "credential": "p"}]\'. '
            "Handed to the page (GET /api/config) and used by the server's own peer connections. "
            "Empty (the default): host candidates only, which is enough when the server has a public address "
            "or for a local demo."
        ),
    )
    ice_host_addresses: list[str] | None = Field(
        None,
        description=(
            "Restrict the server's ICE host candidates to these local addresses (JSON list, for example "
            "'[\"203.0.113.7\"]'). Unset: every address of every interface except loopback. Use it on "
            "multi-homed servers, and '[\"127.0.0.1\"]' for loopback-only tests."
        ),
    )
    webrtc_connect_timeout_s: float = Field(
        15.0, gt=0, description="Hang up a browser call whose media is not connected after this many seconds."
    )

    # SIP
    sip_port: int | None = Field(None, ge=0, le=65535, description="UDP port for SIP (unset: SIP off).")
    sip_host: str | None = Field(None, description="Address SIP binds to (default: host).")
    rtp_port_min: int = Field(20000, ge=1024, le=65535, description="Lowest RTP port.")
    rtp_port_max: int = Field(20999, ge=1024, le=65535, description="Highest RTP port.")

    def upstream(self, local_base: str) -> Upstream:
        """Resolve the upstream; ``local_base`` is this app's own ``http://host:port`` (local engine)."""
        if self.openai_api_key is not None and self.openai_api_key.get_secret_value():
            base = (self.openai_base_url or "https://api.openai.com/v1").rstrip("/")
            ws = self.openai_websocket_base_url or _ws_from_http(base)
            return Upstream(base, ws.rstrip("/"), self.openai_api_key.get_secret_value(), local=False)
        base = local_base.rstrip("/") + "/v1"
        token = self.local_token.get_secret_value() if self.local_token else "sk-local"
        return Upstream(base, _ws_from_http(base), token, local=True)

    @property
    def uses_local_engine(self) -> bool:
        return self.openai_api_key is None or not self.openai_api_key.get_secret_value()


def _ws_from_http(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return url


def settings_markdown() -> str:
    """A Markdown table of every setting (docs/configuration.md is generated from this)."""
    rows = ["| env var | default | description |", "| --- | --- | --- |"]
    for name, f in Settings.model_fields.items():
        alias = f.validation_alias
        if isinstance(alias, AliasChoices):
            env = " / ".join(f"`{c}`" for c in alias.choices if isinstance(c, str))
        else:
            env = f"`VOICEBOT_{name.upper()}`"
        default = "unset" if f.default is None else f"`{f.default}`"
        if f.is_required():
            default = "required"
        rows.append(f"| {env} | {default} | {f.description or ''} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
