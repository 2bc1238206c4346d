"""Term lists: case-insensitive whole-word and phrase matching over normalised text.

Prompts and terms are normalised the same way before matching: Unicode compatibility
forms are folded (NFKC: full-width letters, ligatures), accents are removed
("Beyoncé" matches "beyonce"), case is folded, invisible format characters (zero-width
spaces and joiners) are dropped, and any run of non-word characters separates words.
A term matches when its words appear consecutively as whole words, so "taylor swift"
matches "Taylor-Swift!" but "art" does not match "party".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from provkit.provenance.core.errors import ConfigError

_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Fold compatibility forms, accents, case and invisible characters."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) not in ("Mn", "Cf"))
    return unicodedata.normalize("NFKC", kept.casefold())


def words(text: str) -> list[str]:
    """The normalised words of ``text``."""
    if text.isascii():  # fast path: nothing to fold but case
        return _WORD.findall(text.lower())
    return _WORD.findall(normalise(text))


@dataclass(frozen=True)
class TermList:
    """A named list of terms (one per line; ``#`` starts a comment)."""

    name: str
    terms: tuple[str, ...]
    _index: dict = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_lines(cls, name: str, lines) -> TermList:
        terms = []
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line and words(line):
                terms.append(line)
        index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for term in terms:
            seq = tuple(words(term))
            index.setdefault(seq[0], []).append((seq, term))
        for entries in index.values():  # longest phrase first
            entries.sort(key=lambda e: -len(e[0]))
        return cls(name, tuple(terms), index)

    @classmethod
    def from_file(cls, name: str, path: Path) -> TermList:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read term list {name!r}: {e}", path=path) from None
        return cls.from_lines(name, text.splitlines())

    def find(self, text: str | None) -> list[str]:
        """The terms of this list that occur in ``text``, in order of appearance."""
        if not text:
            return []
        tokens = words(text)
        found: list[str] = []
        for i, token in enumerate(tokens):
            for seq, term in self._index.get(token, ()):
                if tuple(tokens[i : i + len(seq)]) == seq:
                    if term not in found:
                        found.append(term)
                    break
        return found

    def matches(self, text: str | None) -> bool:
        """True when any term of this list occurs in ``text``."""
        if not text:
            return False
        tokens = words(text)
        index = self._index
        for i, token in enumerate(tokens):
            for seq, _ in index.get(token, ()):
                if len(seq) == 1 or tuple(tokens[i : i + len(seq)]) == seq:
                    return True
        return False

    def __len__(self) -> int:
        return len(self.terms)
