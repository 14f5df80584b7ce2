"""Settings: the only place environment variables are read.

Every option is an environment variable prefixed ``VOICEBOT_`` (``VOICEBOT_PORT=9000``), and the common ones
are CLI flags too (flags win). The upstream is OpenAI when ``OPENAI_API_KEY`` is set (``OPENAI_BASE_URL``
overrides its URL); otherwise voicebot mounts its embedded local engine under ``/v1`` and talks to itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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
    realtime_input_batch_ms: int = Field(
        100,
        ge=0,
        le=1000,
        description="Caller audio per Realtime input_audio_buffer.append message, in ms (phone calls also "
        "hand the caller's audio to the call in chunks of this size). Larger batches cost less CPU per call "
        "and delay the model hearing the caller by at most this much; 0 sends every 20 ms frame on its own.",
    )

    # local engine
    local_token: SecretStr | None = Field(
        None, description="Bearer token the local engine requires (unset: any bearer is accepted)."
    )
    local_max_session_s: float = Field(3600, gt=0, description="Local engine session cap (seconds).")
    local_rules_path: Path | None = Field(
        None,
        description=(
            "Rules file (TOML or JSON) for the local engine's rule-based brain; the demo rules ship in "
            "voicebot/local/data/brain_rules.toml. Unset: no rules, only tool matching and small talk."
        ),
    )
    local_record_dir: Path | None = Field(
        None,
        description=(
            "Record every local-engine Realtime session to <dir>/<session id>.jsonl (the directory is "
            "created if missing)."
        ),
    )
    local_replay_path: Path | None = Field(
        None,
        description=(
            "Serve this recorded JSONL session on every local-engine Realtime connection instead of "
            "emulating (deterministic replay; timing is ignored)."
        ),
    )
    local_stt: Literal["auto", "whisper", "pocketsphinx"] = Field(
        "auto", description="Local engine speech-to-text tier (auto: the best that loads)."
    )
    local_tts: Literal["auto", "piper", "espeak"] = Field(
        "auto", description="Local engine text-to-speech tier (auto: the best that loads)."
    )
    local_tts_variation: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description=(
            "Scale of the local TTS voice's random variation: 1 speaks as the voice was trained, 0 gives "
            "identical audio for identical text (reproducible tests and load runs)."
        ),
    )
    local_vad: Literal["auto", "silero", "webrtc", "energy"] = Field(
        "auto", description="Local engine voice activity detector (auto: the best that loads)."
    )

    # calls
    shed_load_lag_ms: float | None = Field(
        30.0,
        gt=0,
        description=(
            "Refuse new calls (503) while the event loop runs this many ms late (75th percentile over 2 s), so a "
            "saturated process sheds load instead of delaying every call (unset: only max_calls)."
        ),
    )
    max_calls: int = Field(40, ge=1, description="Concurrent call cap; further calls get 503.")

    # fallback: the non-realtime cascade, failover, post-call tasks (voicebot/fallback, docs/fallback.md)
    fallback_enabled: bool = Field(
        True,
        description=(
            "Fail over to the cascade (transcriptions → responses → speech) when the Realtime upstream cannot "
            "be reached, drops for good, or answers quota / rate-limit / server errors; switch back later."
        ),
    )
    fallback_responses_model: str = Field("gpt-4.1-mini", description="Responses model of the cascade.")
    fallback_transcription_model: str = Field(
        "gpt-4o-mini-transcribe", description="Transcription model of the cascade."
    )
    fallback_tts_model: str = Field("gpt-4o-mini-tts", description="Speech (TTS) model of the cascade.")
    fallback_switch_line: str = Field(
        "One moment.",
        description="Said when a failover happens while the caller waits for an answer (empty: say nothing).",
    )
    fallback_silence_ms: int = Field(
        500, ge=100, le=5000, description="Cascade turn detection: silence that ends the caller's turn."
    )
    fallback_open_timeout_s: float = Field(
        3.0,
        gt=0,
        description="Give up opening the Realtime session after this long and start on the cascade.",
    )
    fallback_reconnect_grace_s: float = Field(
        1.0, gt=0, description="After a Realtime drop, switch to the cascade unless reconnected within this."
    )
    fallback_probe_initial_s: float = Field(
        10.0, gt=0, description="First probe of the Realtime upstream after a failover (seconds)."
    )
    fallback_probe_max_s: float = Field(
        120.0, gt=0, description="Longest wait between Realtime probes (the backoff doubles up to this)."
    )
    http_timeout_s: float = Field(30.0, gt=0, description="Timeout of one non-realtime HTTP request attempt.")
    http_connect_timeout_s: float = Field(
        5.0, gt=0, description="Connect timeout of non-realtime HTTP requests."
    )
    http_max_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of non-realtime HTTP requests (408/409/429/5xx and network errors).",
    )
    summary_model: str = Field("gpt-4.1-mini", description="Responses model for post-call summaries.")
    calls_dir: Path | None = Field(
        None,
        description=(
            "Store each finished call here as <call id>.json (transcript, stats, summary) and <call id>.txt "
            "(unset: not stored)."
        ),
    )

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
    sip_public_address: str | None = Field(
        None,
        description=(
            "Address the SIP peer should reach us at (Via, Contact and the SDP c= line). "
            "Default: sip_host, or host. Set it when binding 0.0.0.0 or behind a 1:1 NAT."
        ),
    )
    sip_allowed_sources: list[str] | None = Field(
        None,
        description=(
            "IP-authenticated trunks: only these source IPs/CIDRs may send SIP (JSON list, e.g. "
            "'[\"203.0.113.0/24\"]'); anything else is dropped without a response. Unset: any source."
        ),
    )
    sip_requests_per_s: float = Field(
        20.0,
        gt=0,
        description="SIP requests per second per source IP (token bucket, burst 2x); excess dropped.",
    )
    sip_invites_per_s: float = Field(
        5.0,
        gt=0,
        description="New INVITEs per second per source IP (burst 2x). Raise it for a busy trunk (one source IP).",
    )
    sip_transfer_targets: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Blind-transfer allow-list, name → SIP/tel URI (JSON object, e.g. "
            '\'{"sales": "sip:sales@pbx.example.com"}\'). REFER goes only to these URIs.'
        ),
    )
    sip_max_call_duration_s: float = Field(
        3600.0, gt=0, description="Hang up (BYE) a phone call after this many seconds."
    )
    sip_answer_delay_s: float = Field(
        0.0,
        ge=0,
        le=30,
        description="Ring this long (180 Ringing) before answering; 0 answers once the model session is up.",
    )
    sip_transcode_to_pcm24k: bool = Field(
        False,
        description=(
            "Send the model 24 kHz PCM instead of passing G.711 (audio/pcmu, audio/pcma) straight through."
        ),
    )
    openai_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_WEBHOOK_SECRET", "VOICEBOT_OPENAI_WEBHOOK_SECRET"),
        description=(
            "OpenAI-native SIP: the webhook signing secret (whsec_...). Set: POST /webhooks/openai accepts "
            "realtime.call.incoming and runs the agent's tools over a sideband Realtime session."
        ),
    )
    sip_register_uri: str | None = Field(
        None,
        description="Trunk registrar URI, e.g. 'sip:trunk.example.com:5060' (unset: no REGISTER; IP auth).",
    )
    sip_register_username: str | None = Field(None, description="Digest username for REGISTER.")
    sip_register_password: SecretStr | None = Field(None, description="Digest password for REGISTER.")
    sip_register_aor: str | None = Field(
        None, description="Address of record to register (default: sip:<username>@<registrar host>)."
    )
    sip_register_expires: int = Field(
        600, ge=0, le=86400, description="Registration expiry asked of the registrar (seconds)."
    )

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
