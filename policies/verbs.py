"""The ``provkit policy`` verbs: ``check`` (from policies.check), ``lint``, ``test``,
``show`` and ``list_``, each returning values with ``to_json()``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provkit.policies.check import CaseResult, check, test_pack
from provkit.policies.fields import lint_pack
from provkit.policies.pack import Finding, Pack, load_pack, resolve_pack_path, shipped_packs


@dataclass(frozen=True)
class LintReport:
    """``provkit policy lint``: every finding; ``ok`` when none is an error."""

    pack: str
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_json(self) -> dict:
        return {"pack": self.pack, "ok": self.ok, "findings": [f.to_json() for f in self.findings]}


__all__ = ["LintReport", "PackInfo", "TestReport", "check", "lint", "list_", "show", "test"]


def lint(pack: str | Path) -> LintReport:
    """Validate a pack: fields, CEL expressions, term lists, reachability."""
    return LintReport(str(resolve_pack_path(pack)), tuple(lint_pack(pack)))


@dataclass(frozen=True)
class TestReport:
    """``provkit policy test``: each case and whether it passed."""

    __test__ = False  # not a pytest class

    pack: str
    cases: tuple[CaseResult, ...]

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    def to_json(self) -> dict:
        return {
            "pack": self.pack,
            "passed": self.passed,
            "total": len(self.cases),
            "cases": [c.to_json() for c in self.cases],
        }


def test(pack: str | Path, cases: str | Path | None = None) -> TestReport:
    """Run a pack's own test cases (default: cases.yaml beside the pack)."""
    return TestReport(str(pack), tuple(test_pack(pack, cases)))


test.__test__ = False  # a library verb, not a test


def show(pack: str | Path) -> Pack:
    """``provkit policy show``: the loaded pack (version, digest, defaults, rules)."""
    return load_pack(pack)


@dataclass(frozen=True)
class PackInfo:
    name: str
    version: str
    description: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


def list_() -> list[PackInfo]:
    """``provkit policy list``: the shipped packs."""
    return [
        PackInfo(n, p.version, p.description)
        for n, p in ((n, load_pack(n)) for n in shipped_packs())
    ]
