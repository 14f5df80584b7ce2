"""Splitting reply text into sentences for sentence-by-sentence synthesis (pure)."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+|\n\s*")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "e.g.", "i.e.", "etc.", "no.", "jr.", "sr."}
)

MAX_SENTENCE_CHARS = 220
MAX_SENTENCE_WORDS = 32


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order, whitespace-normalised, none empty.

    Splits after ``. ! ? …`` (not after common abbreviations) and at line breaks; a very long sentence is
    cut at clauses and then every ``MAX_SENTENCE_WORDS`` words, so the first audio never waits long.
    """
    pieces: list[str] = []
    for raw in _SENTENCE_END.split(text):
        piece = " ".join(raw.split())
        if not piece:
            continue
        if pieces and pieces[-1].split()[-1].lower() in _ABBREVIATIONS:
            pieces[-1] = f"{pieces[-1]} {piece}"
        else:
            pieces.append(piece)
    out: list[str] = []
    for piece in pieces:
        out.extend(_cut_long(piece))
    return out


def _cut_long(sentence: str) -> list[str]:
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return [sentence]
    out: list[str] = []
    current = ""
    for clause in _CLAUSE_END.split(sentence):
        candidate = f"{current} {clause}".strip()
        if current and len(candidate) > MAX_SENTENCE_CHARS:
            out.append(current)
            current = clause
        else:
            current = candidate
    if current:
        out.append(current)
    final: list[str] = []
    for part in out:
        words = part.split()
        for i in range(0, len(words), MAX_SENTENCE_WORDS):
            final.append(" ".join(words[i : i + MAX_SENTENCE_WORDS]))
    return final
