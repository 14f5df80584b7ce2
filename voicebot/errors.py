"""One exception tree for the whole project.

::

    VoicebotError                       root: every error voicebot raises on purpose
    ├── LocalError                      the caller misused us (bad config, bad argument, bad request)
    │   ├── ConfigError                 settings that cannot work
    │   ├── BadRequest                  an HTTP client sent something invalid (→ 4xx)
    │   └── ToolDefinitionError         a @tool whose signature cannot become a strict JSON schema
    └── RemoteError                     the peer broke the protocol or failed
        ├── ProtocolError               malformed input from a peer (SIP, SDP, JSON, Realtime events)
        ├── UpstreamError               the model upstream answered with an error
        │   ├── RetryableUpstreamError  try again (rate limits, 5xx, dropped sockets)
        │   └── FatalUpstreamError      give up on this upstream (bad key, no quota, beta shape)
        └── CapacityError               we are full (→ 503 / SIP 503 + Retry-After)

Each error carries what to reply where a reply is due: ``http_status``, ``sip_status`` and a Realtime-style
``code``. Handlers turn these into responses; nothing else needs to know the mapping.
"""

from __future__ import annotations


class VoicebotError(Exception):
    """Root of every error voicebot raises on purpose."""

    http_status: int = 500
    sip_status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param


class LocalError(VoicebotError):
    """The caller misused us."""

    http_status = 400
    sip_status = 400
    code = "invalid_request_error"


class ConfigError(LocalError):
    code = "invalid_config"


class BadRequest(LocalError):
    code = "invalid_request_error"


class ToolDefinitionError(LocalError):
    code = "invalid_tool"


class RemoteError(VoicebotError):
    """The peer broke the protocol or failed."""

    http_status = 502
    sip_status = 502
    code = "remote_error"


class ProtocolError(RemoteError):
    http_status = 400
    sip_status = 400
    code = "protocol_error"


class UpstreamError(RemoteError):
    """The model upstream reported an error."""

    code = "upstream_error"


class RetryableUpstreamError(UpstreamError):
    http_status = 503
    sip_status = 503


class FatalUpstreamError(UpstreamError):
    http_status = 502
    sip_status = 503


class CapacityError(RemoteError):
    http_status = 503
    sip_status = 503
    code = "capacity_exceeded"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
