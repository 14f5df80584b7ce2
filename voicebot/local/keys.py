"""AppKeys of the local engine's aiohttp sub-application.

The heavy types (the speech stack, the brain) are imported for type checking only, so importing this module
stays cheap; the values themselves are put on the app by ``create_engine_app``'s cleanup context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from voicebot.config import Settings
from voicebot.local.faults import RealtimeFaults

if TYPE_CHECKING:
    from voicebot.local.brain import Brain
    from voicebot.local.response_store import ResponseStore
    from voicebot.local.speech import SpeechStack


@dataclass(slots=True)
class IssuedSecret:
    """A client secret (``ek_…``) handed out by ``POST /v1/realtime/client_secrets``."""

    value: str
    expires_at: int  # unix seconds
    session: dict[str, Any] = field(default_factory=dict)  # the session config the secret carries


ENGINE_SETTINGS = web.AppKey("engine_settings", Settings)
# The one speech stack (VAD, STT, TTS) of this engine; shared by every route and every Realtime session.
SPEECH: web.AppKey[SpeechStack] = web.AppKey("engine_speech")
# True when the app created SPEECH itself (and so closes it); False when the embedder lent it.
SPEECH_OWNED = web.AppKey("engine_speech_owned", bool)
# The rule-based brain that answers Responses and Realtime turns.
BRAIN: web.AppKey[Brain] = web.AppKey("engine_brain")
# Stored Responses (for ``previous_response_id`` and ``GET /v1/responses/{id}``).
RESPONSES: web.AppKey[ResponseStore] = web.AppKey("engine_responses")
# Client secrets issued by ``POST /v1/realtime/client_secrets``, by value. Expired ones are pruned on issue.
# Fault injection for the Realtime route (see voicebot.local.faults); absent means no faults.
FAULTS: web.AppKey[RealtimeFaults] = web.AppKey("engine_faults")
CLIENT_SECRETS: web.AppKey[dict[str, IssuedSecret]] = web.AppKey("engine_client_secrets")
