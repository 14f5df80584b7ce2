"""Structured SIP header values (pure): URIs, name-addr (From/To/Contact), Via, CSeq, parameter lists.

Every parser raises ``ProtocolError`` on junk and never anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from voicebot.errors import ProtocolError

Params = tuple[tuple[str, str | None], ...]

_TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
_VIA = re.compile(
    rf"^\s*([{_TOKEN_CHARS}]+)\s*/\s*([{_TOKEN_CHARS}]+)\s*/\s*([{_TOKEN_CHARS}]+)\s+(.+)$", re.S
)
_CSEQ = re.compile(rf"^\s*(\d{{1,10}})\s+([{_TOKEN_CHARS}]+)\s*$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._]+)$")


def _split_outside(value: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes and angle brackets."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    depth = 0
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">" and depth:
            depth -= 1
        elif not quoted and depth == 0 and ch == sep:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def split_list(value: str) -> list[str]:
    """Elements of a comma-separated header value (``Via: a, b``), empty elements skipped."""
    return [p.strip() for p in _split_outside(value, ",") if p.strip()]


def parse_params(text: str) -> Params:
    """``;a=1;b;c="x"`` → ((a, 1), (b, None), (c, "x")); quotes are removed from values."""
    out: list[tuple[str, str | None]] = []
    for part in _split_outside(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip()
        if not name:
            raise ProtocolError(f"empty parameter name in {text[:60]!r}")
        if eq:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            out.append((name, value))
        else:
            out.append((name, None))
    return tuple(out)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _get_param(params: Params, name: str) -> str | None:
    low = name.lower()
    for k, v in params:
        if k.lower() == low:
            return v if v is not None else ""
    return None


def _set_param(params: Params, name: str, value: str | None) -> Params:
    low = name.lower()
    kept = [(k, v) for k, v in params if k.lower() != low]
    return (*kept, (name, value))


def parse_hostport(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ProtocolError(f"bad IPv6 host {text[:60]!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ProtocolError(f"bad host:port {text[:60]!r}")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = text.partition(":")
    if not host or not _HOST.match(host):
        raise ProtocolError(f"bad host {host[:60]!r}")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise ProtocolError(f"bad port {port_text[:10]!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A sip:/sips: URI (§19.1)."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: Params = ()
    headers: str = ""
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        scheme, colon, rest = text.strip().partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise ProtocolError(f"not a SIP URI: {text[:60]!r}")
        rest, _, uri_headers = rest.partition("?")
        user: str | None = None
        password: str | None = None
        at = rest.rfind("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, _, pw = userinfo.partition(":")
            password = pw or None
            if not user:
                raise ProtocolError(f"empty user in {text[:60]!r}")
        hostport, _, param_text = rest.partition(";")
        host, port = parse_hostport(hostport)
        return cls(scheme, user, host, port, parse_params(param_text), uri_headers, password)

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    @property
    def address(self) -> tuple[str, int]:
        """host and port (5060/5061 by default), brackets stripped from IPv6 hosts."""
        return self.host.strip("[]"), self.port or (5061 if self.scheme == "sips" else 5060)

    def __str__(self) -> str:
        user = ""
        if self.user is not None:
            user = self.user + (f":{self.password}" if self.password else "") + "@"
        port = f":{self.port}" if self.port else ""
        tail = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{user}{self.host}{port}{format_params(self.params)}{tail}"


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI text, header parameters."""

    display: str
    uri: str
    params: Params = ()

    @property
    def tag(self) -> str | None:
        tag = _get_param(self.params, "tag")
        return tag or None

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return replace(self, params=_set_param(self.params, name, value))

    @property
    def sip_uri(self) -> SipUri:
        return SipUri.parse(self.uri)

    def __str__(self) -> str:
        escaped = self.display.replace("\\", "\\\\").replace('"', '\\"')
        display = f'"{escaped}" ' if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def parse_name_addr(value: str) -> NameAddr:
    value = value.strip()
    if value == "*":
        return NameAddr("", "*")
    lt = _find_unquoted(value, "<")
    if lt >= 0:
        gt = value.find(">", lt)
        if gt < 0:
            raise ProtocolError(f"unterminated <URI> in {value[:60]!r}")
        display, uri, rest = value[:lt], value[lt + 1 : gt].strip(), value[gt + 1 :]
        if rest.strip() and not rest.strip().startswith(";"):
            raise ProtocolError(f"junk after <URI> in {value[:60]!r}")
    else:
        uri, _, rest = value.partition(";")
        display = ""
        uri = uri.strip()
    scheme, colon, tail = uri.partition(":")
    if not colon or not scheme or not tail or not re.match(r"^[A-Za-z][A-Za-z0-9+\-.]*$", scheme):
        raise ProtocolError(f"bad URI in {value[:60]!r}")
    return NameAddr(_unquote(display), uri, parse_params(rest))


def _find_unquoted(value: str, ch: str) -> int:
    quoted = False
    escaped = False
    for i, c in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == ch and not quoted:
            return i
    return -1


@dataclass(frozen=True, slots=True)
class Via:
    """One Via element: ``SIP/2.0/UDP host:port;branch=z9hG4bK...;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        return _get_param(self.params, "branch") or None

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return _get_param(self.params, name) is not None

    def with_param(self, name: str, value: str | None) -> Via:
        low = name.lower()
        if any(k.lower() == low for k, _ in self.params):
            return replace(self, params=tuple((k, value if k.lower() == low else v) for k, v in self.params))
        return replace(self, params=(*self.params, (name, value)))

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.sent_by}{format_params(self.params)}"


def parse_via(value: str) -> Via:
    m = _VIA.match(value)
    if not m or m.group(1).upper() != "SIP" or m.group(2) != "2.0":
        raise ProtocolError(f"bad Via {value[:60]!r}")
    sent_by, _, param_text = m.group(4).partition(";")
    host, port = parse_hostport(sent_by)
    return Via(m.group(3).upper(), host, port, parse_params(param_text))


def parse_cseq(value: str) -> tuple[int, str]:
    m = _CSEQ.match(value)
    if not m:
        raise ProtocolError(f"bad CSeq {value[:40]!r}")
    return int(m.group(1)), m.group(2).upper()
