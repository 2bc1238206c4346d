"""policies: the rule engine, policy packs and the tamper-evident audit log.

The lowest package: it imports no other provkit package, and it also holds the
toolkit's shared foundations (``errors``, ``workspace``, ``options``).

Public verbs (imported on first use, so ``provenance.core.errors`` stays light)::

    pack = load_pack("newsroom")                 # or "platform", "studio", a YAML path
    decision = decide(pack, "publish", context, db=None, actor=None, subject=None)
    evaluate(pack, point, context)               # the same decision, not recorded
    AuditLog(db).verify()                        # the hash chain, checked
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_pack": "policies.pack", "lint_pack": "policies.fields", "Pack": "policies.pack",
    "Rule": "policies.pack", "Finding": "policies.pack", "POINTS": "policies.pack",
    "shipped_packs": "policies.pack",
    "decide": "policies.engine", "decide_many": "policies.engine",
    "evaluate": "policies.engine", "build_context": "policies.engine",
    "Decision": "policies.engine",
    "AuditLog": "policies.audit", "AuditCheck": "policies.audit", "Head": "policies.audit",
    "verify_export": "policies.audit",
    "check": "policies.check", "test_pack": "policies.check", "CheckResult": "policies.check",
    "resolve_evidence": "policies.check", "read_contexts": "policies.check",
    "TermList": "policies.terms",
}
__all__ = [
    "POINTS",
    "AuditCheck",
    "AuditLog",
    "CheckResult",
    "Decision",
    "Finding",
    "Head",
    "Pack",
    "Rule",
    "TermList",
    "build_context",
    "check",
    "decide",
    "decide_many",
    "evaluate",
    "lint_pack",
    "load_pack",
    "read_contexts",
    "resolve_evidence",
    "shipped_packs",
    "test_pack",
    "verify_export",
]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
