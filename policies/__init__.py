"""policies: the rule engine, policy packs and the tamper-evident audit log.

It imports only the foundations (``provenance.core``), never provenance, detect or
generate: the evidence ``policy check`` needs for files comes through a provider named
by a string (policies.check).

Every ``provkit policy`` verb has a function of the same name here (``check``, ``lint``,
``test``, ``show``, ``list_``); the ``provkit audit`` verbs are ``policies.audit.log``,
``verify``, ``head`` and ``export``. Public names are imported on first use::

    pack = load_pack("newsroom")                 # or "platform", "studio", a YAML path
    decision = decide(pack, "publish", context, db=None, actor=None, subject=None)
    evaluate(pack, point, context)               # the same decision, not recorded
    AuditLog(db).verify()                        # the hash chain, checked
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_pack": "policies.pack", "lint_pack": "policies.pack", "Pack": "policies.pack",
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
    "lint": "policies.verbs", "test": "policies.verbs", "show": "policies.verbs",
    "list_": "policies.verbs", "LintReport": "policies.verbs", "TestReport": "policies.verbs",
    "PackInfo": "policies.verbs",
}
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


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'policies' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
