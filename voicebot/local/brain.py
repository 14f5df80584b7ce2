"""The local engine's "model": a deterministic, rule-based brain (pure).

It reads the conversation (``Turn``s), the tools on offer and the instructions, and answers with a ``Reply``:
either a short text or one or more function calls. It is honest about what it is: small talk gets short
friendly replies, questions it cannot answer get "I can't look that up", tools are chosen by keyword overlap
with their names and descriptions, and their arguments are filled from the user's words guided by the JSON
schema. A small rules file (JSON or TOML) adds pattern → reply / tool-call rules for demos and tests.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from voicebot.local import brain_args as args_mod
from voicebot.local import brain_lang
from voicebot.local.brain_args import fill_arguments, words_of

TurnKind = Literal["user", "assistant", "system", "function_call", "function_call_output"]

BOT_NAME = "voicebot's offline engine"
CANT_LOOK_UP = "I'm voicebot's offline engine; I can't look that up."


@dataclass(frozen=True, slots=True)
class Turn:
    """One conversation entry. ``text`` is the message text, or the output of a function call."""

    kind: TurnKind
    text: str = ""
    name: str = ""
    arguments: str = ""
    call_id: str = ""

    @classmethod
    def user(cls, text: str) -> Turn:
        return cls("user", text)

    @classmethod
    def assistant(cls, text: str) -> Turn:
        return cls("assistant", text)

    @classmethod
    def system(cls, text: str) -> Turn:
        return cls("system", text)

    @classmethod
    def call(cls, name: str, arguments: str, call_id: str) -> Turn:
        return cls("function_call", name=name, arguments=arguments, call_id=call_id)

    @classmethod
    def output(cls, call_id: str, output: str) -> Turn:
        return cls("function_call_output", text=output, call_id=call_id)


@dataclass(frozen=True, slots=True)
class FunctionCall:
    name: str
    arguments: str  # a JSON object, as a string


@dataclass(frozen=True, slots=True)
class Reply:
    """Either ``text`` (spoken or written) or ``calls`` (one or more function calls)."""

    text: str = ""
    calls: tuple[FunctionCall, ...] = ()

    @property
    def is_call(self) -> bool:
        return bool(self.calls)


@dataclass(frozen=True, slots=True)
class Rule:
    """``pattern`` (a case-insensitive regex, searched in the user's last words) → ``reply`` or ``tool``.

    Named groups fill ``{name}`` placeholders in ``reply`` and in string values of ``arguments``.
    A tool rule applies only when that tool is offered, unless ``always`` is set.
    """

    pattern: re.Pattern[str]
    reply: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    always: bool = False


@dataclass(frozen=True, slots=True)
class RulesConfig:
    rules: tuple[Rule, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RulesConfig:
        """``{"rules": [{"pattern": "...", "reply": "..."} | {"pattern": "...", "tool": "...", ...}]}``."""
        raw = data.get("rules", [])
        if not isinstance(raw, list):
            raise ValueError("'rules' must be a list")
        rules: list[Rule] = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict) or not isinstance(entry.get("pattern"), str):
                raise ValueError(f"rule {i} needs a string 'pattern'")
            reply, tool = entry.get("reply"), entry.get("tool")
            if (reply is None) == (tool is None):
                raise ValueError(f"rule {i} needs exactly one of 'reply' or 'tool'")
            arguments = entry.get("arguments", {})
            if not isinstance(arguments, dict):
                raise ValueError(f"rule {i}: 'arguments' must be an object")
            try:
                pattern = re.compile(entry["pattern"], re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"rule {i}: bad pattern: {exc}") from exc
            rules.append(Rule(pattern, reply, tool, arguments, bool(entry.get("always", False))))
        return cls(tuple(rules))

    @classmethod
    def from_text(cls, text: str, fmt: Literal["json", "toml"]) -> RulesConfig:
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a rules file must hold an object")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> RulesConfig:
        p = Path(path)
        return cls.from_text(p.read_text("utf-8"), "toml" if p.suffix == ".toml" else "json")


DEFAULT_RULES_PATH = Path(__file__).parent / "data" / "brain_rules.toml"

_SMALL_TALK: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), r)
    for p, r in (
        (r"\b(thanks|thank you|cheers)\b", "You're welcome!"),
        (r"\b(bye|goodbye|see you|good night)\b", "Goodbye! Talk to you soon."),
        (r"\bwho are you\b|\bwhat are you\b|\byour name\b", "I'm {me}, a small rule-based assistant."),
        (r"\bhow are you\b|\bhow's it going\b|\bhow are things\b", "I'm doing well, thanks for asking!"),
        (r"\bwhat can you do\b|\bhelp me\b|^help\b", "{abilities}"),
        (r"^(hi|hello|hey|good (morning|afternoon|evening)|greetings)\b", "Hello! How can I help you today?"),
    )
)
_QUESTION = re.compile(
    r"\?\s*$|^(what|who|whom|whose|when|where|why|how|which|is|are|am|was|were|do|does|did|can|could|"
    r"will|would|should|shall|may|might|tell me|show me|find|look up|search)\b",
    re.IGNORECASE,
)
_NAME_IN_INSTRUCTIONS = re.compile(r"\b(?i:your name is|you are called|call yourself)\s+([A-Z][\w-]*)")


class Brain:
    """Deterministic rule-based replies. ``respond`` takes about 0.1–0.3 ms for a short conversation."""

    def __init__(self, rules: RulesConfig | None = None) -> None:
        self.rules = rules or RulesConfig()

    def respond(
        self,
        history: list[Turn],
        tools: list[dict[str, Any]],
        instructions: str = "",
        tool_choice: Any = "auto",
    ) -> Reply:
        functions = [t for t in tools if t.get("type", "function") == "function" and t.get("name")]
        if tool_choice == "none":
            functions = []
        elif isinstance(tool_choice, dict) and tool_choice.get("name"):
            functions = [t for t in functions if t["name"] == tool_choice["name"]] or functions
        said = _SAY_EXACTLY.search(instructions)
        if said is not None:
            return Reply(text=_unquote(said.group(1)))
        lang = brain_lang.instructed_language(instructions)
        last = _last_meaningful(history)
        if last is not None and last.kind == "function_call_output" and _after_handoff(history, last):
            return Reply(text=_phrase(lang, "greeting") or _greeting(instructions))
        if last is not None and last.kind == "function_call_output":
            return Reply(text=_summarize_outputs(history))
        user = last.text.strip() if last is not None and last.kind == "user" else ""
        if last is None or last.kind != "user":
            return Reply(text=_phrase(lang, "greeting") or _greeting(instructions))
        if not user:
            return Reply(text="Are you still there?")
        by_rule = self._apply_rules(user, functions)
        if by_rule is not None:
            return by_rule
        handoff = _language_handoff(user, functions, lang)
        if handoff is not None:
            return handoff
        forced = tool_choice == "required" or isinstance(tool_choice, dict)
        by_tool = _choose_tool(user, functions, forced, _pending_context(history))
        if by_tool is not None:
            return by_tool
        return Reply(text=_foreign_small_talk(user, lang) or _small_talk(user, instructions, functions))

    def _apply_rules(self, user: str, functions: list[dict[str, Any]]) -> Reply | None:
        names = {t["name"] for t in functions}
        for rule in self.rules.rules:
            m = rule.pattern.search(user)
            if m is None:
                continue
            groups = {k: v for k, v in m.groupdict().items() if v is not None}
            if rule.reply is not None:
                return Reply(text=_format(rule.reply, groups))
            if rule.tool is not None and (rule.always or rule.tool in names):
                filled = {
                    k: _format(v, groups) if isinstance(v, str) else v for k, v in rule.arguments.items()
                }
                return Reply(calls=(FunctionCall(rule.tool, json.dumps(filled)),))
        return None


_SAY_EXACTLY = re.compile(r"\bSay exactly this[^:]*:\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return text[1:-1]
        return value if isinstance(value, str) else text
    return text


def _language_handoff(user: str, functions: list[dict[str, Any]], current: str | None) -> Reply | None:
    """Route a caller to the agent for the language they speak (language-triage handoffs)."""
    spoken = brain_lang.detect(user)
    if spoken is None or spoken == current:
        return None
    for t in functions:
        target = brain_lang.named_language(f"{t['name']} {t.get('description', '')}")
        if target == spoken and str(t["name"]).startswith("transfer_to_"):
            return Reply(calls=(FunctionCall(t["name"], "{}"),))
    return None


def _after_handoff(history: list[Turn], output: Turn) -> bool:
    """Whether ``output`` answers a handoff call (the new agent then introduces itself)."""
    for turn in history:
        if turn.kind == "function_call" and turn.call_id == output.call_id:
            return turn.name.startswith("transfer_to_")
    return False


def _phrase(lang: str | None, key: str) -> str | None:
    return brain_lang.PHRASES.get(lang or "", {}).get(key)


def _foreign_small_talk(user: str, lang: str | None) -> str | None:
    """Canned replies in the language the instructions ask for (English falls through to the rules)."""
    if lang is None or lang not in brain_lang.PHRASES:
        return None
    lower = user.lower()
    if any(w in lower for w in ("gracias", "merci", "danke", "thank")):
        return _phrase(lang, "thanks")
    if any(w in lower for w in ("adiós", "adios", "au revoir", "tschüss", "bye")):
        return _phrase(lang, "bye")
    if any(w in lower for w in ("hola", "bonjour", "hallo", "hello", "hi")):
        return _phrase(lang, "greeting")
    return _phrase(lang, "cant")


def _format(template: str, groups: dict[str, str]) -> str:
    try:
        return template.format(**groups)
    except (KeyError, IndexError, ValueError):
        return template


def _last_meaningful(history: list[Turn]) -> Turn | None:
    for turn in reversed(history):
        if turn.kind != "system":
            return turn
    return None


def _greeting(instructions: str) -> str:
    m = _NAME_IN_INSTRUCTIONS.search(instructions)
    return f"Hello, I'm {m.group(1)}! How can I help you today?" if m else "Hello! How can I help you today?"


def _pending_context(history: list[Turn]) -> str:
    """The user's previous words when the assistant just asked a follow-up question (else "")."""
    kinds = [t for t in history if t.kind in ("user", "assistant")]
    if (
        len(kinds) >= 3
        and kinds[-2].kind == "assistant"
        and kinds[-2].text.rstrip().endswith("?")
        and kinds[-3].kind == "user"
    ):
        return kinds[-3].text
    return ""


def _choose_tool(user: str, functions: list[dict[str, Any]], forced: bool, context: str) -> Reply | None:
    if not functions:
        return None
    scored = sorted(
        ((args_mod.tool_score(user, t), i, t) for i, t in enumerate(functions)), key=lambda s: (-s[0], s[1])
    )
    best_score, _, best = scored[0]
    answer_to_question = False
    if best_score < 1.0 and context:
        ctx_scored = sorted(
            ((args_mod.tool_score(context, t), i, t) for i, t in enumerate(functions)),
            key=lambda s: (-s[0], s[1]),
        )
        if ctx_scored[0][0] >= 1.0:
            best_score, _, best = ctx_scored[0]
            answer_to_question = True
    if best_score < 1.0 and not forced:
        return None
    schema = best.get("parameters") or {}
    if answer_to_question:
        filled, missing = fill_arguments(context, schema, answer=user)
    else:
        filled, missing = fill_arguments(user, schema)
    if missing:
        return Reply(text=args_mod.question_for(missing[0], schema, best["name"]))
    return Reply(calls=(FunctionCall(best["name"], json.dumps(filled)),))


def _small_talk(user: str, instructions: str, functions: list[dict[str, Any]]) -> str:
    m = _NAME_IN_INSTRUCTIONS.search(instructions)
    me = m.group(1) + ", " + BOT_NAME if m else BOT_NAME
    if functions:
        names = [" ".join(words_of(t["name"])) for t in functions[:3]]
        abilities = "I can chat a little and help with " + _join(names) + "."
    else:
        abilities = "I can chat a little; I'm an offline engine, so I can't look things up."
    for pattern, reply in _SMALL_TALK:
        if pattern.search(user):
            return reply.format(me=me, abilities=abilities)
    if _QUESTION.search(user):
        return CANT_LOOK_UP
    short = user if len(user) <= 80 else user[:77].rstrip() + "..."
    return f'You said: "{short}". I\'m an offline engine, so I keep things simple.'


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _summarize_outputs(history: list[Turn]) -> str:
    """A sentence about the trailing function outputs, using their (JSON) results."""
    outputs: list[Turn] = []
    for turn in reversed(history):
        if turn.kind == "function_call_output":
            outputs.append(turn)
        elif turn.kind != "system":
            break
    outputs.reverse()
    calls = {t.call_id: t for t in history if t.kind == "function_call"}
    sentences = []
    for out in outputs:
        call = calls.get(out.call_id)
        label = _tool_label(call.name) if call is not None else "tool"
        sentences.append(_describe_result(label, out.text))
    return " ".join(sentences)


def _tool_label(name: str) -> str:
    words = [w for w in words_of(name) if w not in ("get", "fetch", "lookup", "tool", "function")]
    return " ".join(words or words_of(name))


_SPOKEN_KEYS = ("spoken", "say", "speech", "summary", "message")


def _describe_result(label: str, output: str) -> str:
    try:
        value: Any = json.loads(output)
    except ValueError:
        value = output
    if isinstance(value, dict):
        if "error" in value and len(value) <= 2:
            return f"Sorry, {label} failed: {_scalar(value['error'])}."
        for key in _SPOKEN_KEYS:  # a tool that says how to say its result is taken at its word
            if isinstance(value.get(key), str) and value[key].strip():
                text = str(value[key]).strip()
                return text if text[-1] in ".!?" else text + "."
        parts = [f"{' '.join(words_of(str(k)))} is {_scalar(v)}" for k, v in list(value.items())[:6]]
        return f"Here's the {label} result: {_join(parts)}." if parts else f"{label.capitalize()} is done."
    if isinstance(value, list):
        items = [_scalar(v) for v in value[:5]]
        return (
            f"Here's the {label} result: {_join(items)}." if items else f"{label.capitalize()} found nothing."
        )
    text = _scalar(value).strip()
    if not text:
        return f"{label.capitalize()} is done."
    return f"Here's the {label} result: {text.rstrip('.')}."


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return _join([f"{' '.join(words_of(str(k)))} {_scalar(v)}" for k, v in list(value.items())[:4]])
    if isinstance(value, list):
        return _join([_scalar(v) for v in value[:4]])
    if value is None:
        return "unknown"
    return str(value)
