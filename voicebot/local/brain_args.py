"""Tool choice and argument filling for the rule-based brain (pure).

``tool_score`` rates how well the user's words match a tool's name and description; ``fill_arguments``
reads argument values out of the user's words, guided by the tool's JSON schema: strings after prepositions
("in Paris" → city "Paris"), numbers (digits and number words), enum values by word, booleans by mention
(negated by "no"/"without"/"off").
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|[A-Za-z][A-Za-z']*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _wordlist(text: str) -> list[str]:
    return text.split()


STOP = frozenset(
    _wordlist(
        "a an the is are am was were be been to of in on at for from by with and or but it its this "
        "that these those me my you your i we our us he she they them what whats what's which who how "
        "please can could would will should do does did some any there here like about into than then so "
        "if as just get gets fetch tool "
        "function current now today tell give show let let's i'm it's"
    )
)
_GENERIC_NAME = frozenset(
    {"get", "fetch", "do", "run", "call", "tool", "func", "function", "api", "the", "a"}
)
_SYNONYMS = {
    "weather": (
        "temperature",
        "forecast",
        "rain",
        "raining",
        "sunny",
        "snow",
        "snowing",
        "cold",
        "hot",
        "warm",
    ),
    "time": ("clock", "o'clock"),
    "timer": ("countdown",),
    "search": ("look", "find", "google"),
    "email": ("mail",),
    "call": ("phone", "dial", "ring"),
    "music": ("song", "play"),
    "light": ("lights", "lamp"),
}
_LOCATION_WORDS = frozenset(
    {
        "city",
        "location",
        "place",
        "destination",
        "country",
        "town",
        "address",
        "region",
        "where",
        "origin",
        "area",
        "state",
    }
)
_NAME_WORDS = frozenset({"name", "title", "label", "contact", "person", "recipient", "user", "who"})
_TEXT_WORDS = frozenset(
    {
        "query",
        "text",
        "message",
        "content",
        "topic",
        "q",
        "search",
        "term",
        "question",
        "note",
        "subject",
        "body",
        "prompt",
        "description",
        "reason",
        "input",
    }
)
_PREPOSITIONS = ("in", "at", "for", "near", "to", "from", "around")
_PHRASE_STOP = frozenset(
    _wordlist(
        "today tomorrow tonight now please right this next and with on at then yesterday currently later "
        "weekend morning evening afternoon"
    )
)
_NEGATIONS = frozenset({"no", "not", "don't", "dont", "without", "never", "disable", "off", "exclude"})
_UNITS = {
    w: i
    for i, w in enumerate(
        _wordlist(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen"
        )
    )
}
_TENS = {
    w: 10 * (i + 2) for i, w in enumerate(_wordlist("twenty thirty forty fifty sixty seventy eighty ninety"))
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def words_of(name: str) -> list[str]:
    """``get_weatherNow`` → ``["get", "weather", "now"]``."""
    return [w.lower() for w in re.split(r"[\s_\-./]+", _CAMEL.sub(" ", name)) if w]


def stem(word: str) -> str:
    w = word.lower().removesuffix("'s")
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: len(w) - len(suffix)] + repl
    return w


def _content_stems(text: str) -> set[str]:
    return {stem(t) for t in _TOKEN.findall(text) if t.lower() not in STOP}


def tool_score(user: str, tool: dict[str, Any]) -> float:
    """Name words count 1 each, description words 0.5 each; synonyms of a name word count as the word."""
    said = _content_stems(user)
    name_words = [w for w in words_of(str(tool.get("name", ""))) if w not in _GENERIC_NAME and w not in STOP]
    score = 0.0
    matched: set[str] = set()
    for w in name_words:
        forms = {stem(w)} | {stem(s) for s in _SYNONYMS.get(w, ())}
        if forms & said:
            score += 1.0
            matched |= forms
    desc = _content_stems(str(tool.get("description", ""))) - matched - {stem(w) for w in name_words}
    score += 0.5 * len(desc & said)
    return score


# --- numbers ---------------------------------------------------------------------------------------------


def find_numbers(tokens: list[str]) -> list[tuple[float, int]]:
    """(value, token index) for each number written in digits or words ("twenty one", "a hundred")."""
    found: list[tuple[float, int]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i].lower()
        if tok[0].isdigit():
            thousands = re.fullmatch(r"\d{1,3},\d{3}", tok) is not None
            found.append((float(tok.replace(",", "") if thousands else tok.replace(",", ".")), i))
            i += 1
            continue
        if tok in _UNITS or tok in _TENS or (tok == "a" and i + 1 < len(tokens) and tokens[i + 1] in _SCALES):
            value, end = _parse_number_words(tokens, i)
            found.append((float(value), i))
            i = end
            continue
        i += 1
    return found


def _parse_number_words(tokens: list[str], start: int) -> tuple[int, int]:
    total, current, i = 0, 0, start
    while i < len(tokens):
        tok = tokens[i].lower()
        if tok == "a" and i == start:
            current = 1
        elif tok in _UNITS:
            current += _UNITS[tok]
        elif tok in _TENS:
            current += _TENS[tok]
        elif tok in _SCALES:
            scale = _SCALES[tok]
            if scale >= 1000:
                total += max(current, 1) * scale
                current = 0
            else:
                current = max(current, 1) * scale
        elif tok == "and" and i + 1 < len(tokens) and tokens[i + 1].lower() in (_UNITS.keys() | _TENS.keys()):
            pass
        else:
            break
        i += 1
    return total + current, i


# --- argument filling ------------------------------------------------------------------------------------


def _prop_type(schema: dict[str, Any]) -> str:
    t = schema.get("type", "string")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if "enum" in schema:
        return "enum"
    return str(t)


def fill_arguments(
    text: str, schema: dict[str, Any], answer: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Fill ``schema``'s properties from ``text``; ``answer`` is a reply to a follow-up question.

    Returns the arguments found and the required properties still missing.
    """
    props: dict[str, Any] = schema.get("properties") or {}
    required: list[str] = [r for r in schema.get("required") or [] if r in props]
    tokens = _TOKEN.findall(text)
    numbers = find_numbers(tokens)
    used_numbers: set[int] = set()
    reserved = frozenset(
        w
        for ps in props.values()
        if isinstance(ps, dict)
        for v in ps.get("enum", [])
        for w in words_of(str(v))
    )
    out: dict[str, Any] = {}
    for name, ps in props.items():
        if not isinstance(ps, dict):
            continue
        value = _value_for(name, ps, text, tokens, numbers, used_numbers, reserved)
        if value is not None:
            out[name] = value
    if answer is not None:
        for name in required:
            if name not in out and isinstance(props[name], dict):
                value = _value_from_answer(name, props[name], answer)
                if value is not None:
                    out[name] = value
                    break  # one answer fills one question
    # In strict schemas every property is "required"; a nullable one is really optional: null = the default.
    for name in required:
        if name not in out and _nullable(props[name]):
            out[name] = None
    missing = [r for r in required if r not in out]
    return out, missing


def _nullable(ps: Any) -> bool:
    if not isinstance(ps, dict):
        return False
    t = ps.get("type")
    if t == "null" or (isinstance(t, list) and "null" in t):
        return True
    if None in (ps.get("enum") or []):
        return True
    return any(_nullable(alt) for alt in ps.get("anyOf") or [])


def _value_for(
    name: str,
    ps: dict[str, Any],
    text: str,
    tokens: list[str],
    numbers: list[tuple[float, int]],
    used: set[int],
    reserved: frozenset[str],
) -> Any:
    kind = _prop_type(ps)
    if kind == "enum":
        return _match_enum(ps["enum"], tokens)
    if kind == "boolean":
        return _match_bool(name, tokens)
    if kind in ("integer", "number"):
        return _match_number(name, kind, tokens, numbers, used)
    if kind == "string":
        return _match_string(name, ps, text, tokens, reserved)
    if kind == "array" and isinstance(ps.get("items"), dict) and "enum" in ps["items"]:
        hits = [v for v in ps["items"]["enum"] if _enum_hit(v, tokens) is not None]
        return hits or None
    return None


def _enum_hit(value: Any, tokens: list[str]) -> int | None:
    words = [stem(w) for w in words_of(str(value))]
    stems = [stem(t) for t in tokens]
    if not words:
        return None
    for i in range(len(stems) - len(words) + 1):
        if stems[i : i + len(words)] == words:
            return i
    return None


def _match_enum(values: list[Any], tokens: list[str]) -> Any:
    hits = [(pos, i, v) for i, v in enumerate(values) if (pos := _enum_hit(v, tokens)) is not None]
    return min(hits)[2] if hits else None


def _key_words(name: str) -> list[str]:
    generic = {"is", "enable", "enabled", "use", "include", "with", "should", "allow", "do"}
    return [stem(w) for w in words_of(name) if w not in generic] or [stem(w) for w in words_of(name)]


_SWITCH_WORDS = frozenset({"on", "enabled", "enable", "active", "power", "state", "switch"})


def _match_bool(name: str, tokens: list[str]) -> bool | None:
    keys = set(_key_words(name))
    low = [t.lower() for t in tokens]
    if set(words_of(name)) & _SWITCH_WORDS:
        for tok in reversed(low):
            if tok in ("off", "disable", "deactivate", "stop"):
                return False
            if tok in ("on", "enable", "activate", "start"):
                return True
    for i, tok in enumerate(low):
        if stem(tok) in keys:
            window = low[max(0, i - 3) : i] + low[i + 1 : i + 2]
            return not any(w in _NEGATIONS for w in window)
    return None


def _match_number(
    name: str, kind: str, tokens: list[str], numbers: list[tuple[float, int]], used: set[int]
) -> float | int | None:
    keys = set(_key_words(name))
    near = [
        (abs(pos - j), k)
        for k, (_, pos) in enumerate(numbers)
        if k not in used
        for j, t in enumerate(tokens)
        if stem(t) in keys and abs(pos - j) <= 3
    ]
    pick = min(near)[1] if near else next((k for k in range(len(numbers)) if k not in used), None)
    if pick is None:
        return None
    used.add(pick)
    value = numbers[pick][0]
    return int(value) if kind == "integer" or value.is_integer() else value


def _phrase_after(tokens: list[str], preps: tuple[str, ...], reserved: frozenset[str]) -> str | None:
    """The words after the first matching preposition, up to a stop word (at most four words).

    Phrases made only of ``reserved`` words (other arguments' enum values) are skipped.
    """
    for i in range(len(tokens)):
        if tokens[i].lower() not in preps:
            continue
        words: list[str] = []
        for tok in tokens[i + 1 :]:
            low = tok.lower()
            if low in _PHRASE_STOP or low in _PREPOSITIONS or tok[0].isdigit() or len(words) == 4:
                break
            if not words and low in ("the", "a", "an", "me", "my", "you", "it", "us"):
                if low in ("me", "you", "it", "us"):
                    break
                continue
            if low in _UNITS or low in _TENS:
                break
            words.append(tok)
        if words and not {w.lower() for w in words} <= reserved:
            return " ".join(words)
    return None


def _match_string(
    name: str, ps: dict[str, Any], text: str, tokens: list[str], reserved: frozenset[str]
) -> str | None:
    words = set(words_of(name)) | set(words_of(str(ps.get("description", "")))[:3])
    quoted = re.search(r"[\"“']([^\"”']{1,200})[\"”']", text)
    if words & _LOCATION_WORDS:
        preps: tuple[str, ...] = ("from",) if "origin" in words or "from" in words else _PREPOSITIONS
        if "destination" in words:
            preps = ("to",)
        phrase = _phrase_after(tokens, preps, reserved)
        if phrase is not None:
            return phrase if any(c.isupper() for c in phrase) else phrase.title()
        return None
    if quoted:
        return quoted.group(1)
    named = re.search(r"\b(?:named|called|titled)\s+([A-Za-z][\w' -]{0,40}?)(?:[.,!?]|$)", text)
    if words & _NAME_WORDS and named:
        return named.group(1).strip()
    if set(words_of(name)) & _TEXT_WORDS:
        m = re.search(r"\b(?:about|for|that says|saying|say|up|is)\s+(.+?)[.!?]*$", text, re.IGNORECASE)
        return (m.group(1) if m else text).strip().rstrip(".!?")
    prop = " ".join(words_of(name))
    m = re.search(
        rf"\b{re.escape(prop)}\s+(?:is\s+|to\s+|of\s+|as\s+|=\s*)?([\w'-]+(?:\s+[A-Z][\w'-]*)*)",
        text,
        re.IGNORECASE,
    )
    if m and m.group(1).lower() not in STOP:
        return m.group(1)
    return None


def _value_from_answer(name: str, ps: dict[str, Any], answer: str) -> Any:
    kind = _prop_type(ps)
    tokens = _TOKEN.findall(answer)
    if kind == "enum":
        return _match_enum(ps["enum"], tokens)
    if kind in ("integer", "number"):
        nums = find_numbers(tokens)
        if not nums:
            return None
        v = nums[0][0]
        return int(v) if kind == "integer" or v.is_integer() else v
    if kind == "boolean":
        low = {t.lower() for t in tokens}
        if low & {"yes", "yeah", "sure", "true", "ok", "okay", "please"}:
            return True
        return False if low & {"no", "nope", "false", "don't"} else None
    if kind == "string":
        cleaned = re.sub(
            r"^(?:it's|it is|in|at|to|for|the|um|uh|well|maybe)\s+", "", answer.strip(), flags=re.IGNORECASE
        )
        cleaned = cleaned.strip().rstrip(".!?")
        if not cleaned:
            return None
        loc = set(words_of(name)) & _LOCATION_WORDS
        return cleaned.title() if loc and cleaned.islower() else cleaned
    return None


def question_for(prop: str, schema: dict[str, Any], tool: str) -> str:
    """A short follow-up question for a required argument the user did not give."""
    ps = (schema.get("properties") or {}).get(prop) or {}
    words = " ".join(words_of(prop))
    kind = _prop_type(ps) if isinstance(ps, dict) else "string"
    if kind == "enum":
        opts = [str(v) for v in ps["enum"]][:4]
        choice = " or ".join(opts) if len(opts) <= 2 else ", ".join(opts[:-1]) + " or " + opts[-1]
        return f"Which {words}: {choice}?"
    if kind == "boolean":
        return f"Should I use {words}, yes or no?"
    if set(words_of(prop)) & _LOCATION_WORDS:
        return f"Which {words}?"
    if kind in ("integer", "number"):
        return f"How many {words}?"
    return f"What {words} should I use for {' '.join(w for w in words_of(tool) if w not in _GENERIC_NAME)}?"
