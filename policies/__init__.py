"""policies: the rule engine, policy packs and the tamper-evident audit log.

It imports only the foundations (``provenance.core``), never provenance, detect or
generate: the evidence ``policy check`` needs for files comes through a provider named
by a string (policies.check).

Every ``provkit policy`` verb has a function of the same name here (``check``, ``lint``,
``test``, ``show``, ``list_``); the ``provkit audit`` verbs are ``policies.audit.log``,
``verify``, ``head`` and ``export``. The public names::

    pack = load_pack("newsroom")                 # or "platform", "studio", a YAML path
    decision = decide(pack, "publish", context, db=None, actor=None, subject=None)
    evaluate(pack, point, context)               # the same decision, not recorded
    AuditLog(db).verify()                        # the hash chain, checked
"""

from __future__ import annotations

from provkit.provenance.core.workspace import load_sqlite_utils

load_sqlite_utils()  # before the audit log imports it: without pandas (see there)

from provkit.policies.audit import AuditCheck, AuditLog, Head, verify_export
from provkit.policies.check import CheckResult, check, read_contexts, resolve_evidence, test_pack
from provkit.policies.engine import Decision, build_context, decide, decide_many, evaluate
from provkit.policies.fields import lint_pack
from provkit.policies.pack import POINTS, Finding, Pack, Rule, load_pack, shipped_packs
from provkit.policies.terms import TermList
from provkit.policies.verbs import LintReport, PackInfo, TestReport, lint, list_, show, test

__all__ = [
    "POINTS",
    "AuditCheck",
    "AuditLog",
    "CheckResult",
    "Decision",
    "Finding",
    "Head",
    "LintReport",
    "Pack",
    "PackInfo",
    "Rule",
    "TermList",
    "TestReport",
    "build_context",
    "check",
    "decide",
    "decide_many",
    "evaluate",
    "lint",
    "lint_pack",
    "list_",
    "load_pack",
    "read_contexts",
    "resolve_evidence",
    "shipped_packs",
    "show",
    "test",
    "test_pack",
    "verify_export",
]
