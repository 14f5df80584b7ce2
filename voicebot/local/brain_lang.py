"""Language hints for the rule brain (pure): which language a user wrote in, and which language an agent's
instructions ask it to speak.

Enough to route a language-triage handoff ("transfer_to_spanish_agent") and to answer in the agent's language
with a few canned phrases; not a language model. Detection counts common function words.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Frequent short words of each language (none shared between the lists).
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "english": frozenset(
        "the a an is are was i you he she we they it my your to of and in on for with what how "
        "please can could would this that do does not".split()
    ),
    "spanish": frozenset(
        "el la los las un una es son está estoy hola gracias por favor quiero necesito tengo "
        "usted ustedes yo tú mi qué cómo dónde cuándo buenos buenas días tardes noches ayuda "
        "español sí muy pero del al con para hablar puede".split()
    ),
    "french": frozenset(
        "le les une est sont je tu vous nous bonjour merci s'il plaît veux besoin avec pour "
        "français oui très mais du au parler comment où quand".split()
    ),
    "german": frozenset(
        "der die das ein eine ist sind ich du sie wir hallo danke bitte möchte brauche mit für "
        "deutsch ja sehr aber vom zum sprechen wie wo wann".split()
    ),
}

# Names a tool or an instruction may use for a language.
_NAMES: dict[str, tuple[str, ...]] = {
    "english": ("english", "inglés"),
    "spanish": ("spanish", "español", "espanol", "castellano"),
    "french": ("french", "français", "francais"),
    "german": ("german", "deutsch"),
}

_SPEAKS = re.compile(r"\b(?:speak|speaks|answer|respond|reply|talk)s?\b[^.]{0,40}?\b(\w+)\b", re.IGNORECASE)

PHRASES: dict[str, dict[str, str]] = {
    "spanish": {
        "greeting": "¡Hola! ¿En qué puedo ayudarle?",
        "cant": "Lo siento, soy un motor sin conexión y no puedo consultar eso.",
        "thanks": "¡De nada!",
        "bye": "¡Adiós! Hasta pronto.",
    },
    "french": {
        "greeting": "Bonjour ! Comment puis-je vous aider ?",
        "cant": "Désolé, je suis un moteur hors ligne et je ne peux pas vérifier cela.",
        "thanks": "De rien !",
        "bye": "Au revoir !",
    },
    "german": {
        "greeting": "Hallo! Wie kann ich Ihnen helfen?",
        "cant": "Entschuldigung, ich bin eine Offline-Engine und kann das nicht nachsehen.",
        "thanks": "Gern geschehen!",
        "bye": "Auf Wiedersehen!",
    },
}


def detect(text: str) -> str | None:
    """The language ``text`` is most likely in, or None when there is no clear winner."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return None
    scores = {lang: sum(1 for w in words if w in vocab) for lang, vocab in _FUNCTION_WORDS.items()}
    best = max(scores, key=lambda k: scores[k])
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1]:
        return None
    return best


def named_language(text: str) -> str | None:
    """The language a name, description or instruction refers to ("Spanish agent" → "spanish")."""
    lower = text.lower()
    found = [lang for lang, names in _NAMES.items() if any(re.search(rf"\b{n}\b", lower) for n in names)]
    return found[0] if len(found) == 1 else None


def instructed_language(instructions: str) -> str | None:
    """The language the instructions tell the agent to speak, when they name exactly one."""
    for m in _SPEAKS.finditer(instructions):
        lang = named_language(m.group(0))
        if lang is not None:
            return lang
    return None
