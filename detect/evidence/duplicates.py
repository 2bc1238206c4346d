"""Near-duplicate evidence: the file's fingerprints searched in the workspace's reference
sets (detect.index); the matches are also the report's and the policy context's
``duplicates``."""

from __future__ import annotations

from provkit.detect.evidence.base import (
    BaseCollector,
    Evidence,
    FileContext,
    Found,
    Options,
    not_checked,
)
from provkit.detect.index import ReferenceIndex
from provkit.provenance.core.errors import BadInput, ConfigError, describe


def check_index_sets(wanted, existing) -> None:
    """ConfigError when a bank asked for by name does not exist."""
    missing = [s for s in wanted or [] if s not in existing]
    if not missing:
        return
    have = (
        f"sets: {', '.join(sorted(existing))}"
        if existing
        else "this workspace has no banks; add one with `provkit bank add`"
    )
    raise ConfigError(f"no bank named {', '.join(missing)} ({have})")


class DuplicatesCollector(BaseCollector):
    """``found["duplicates"]``: the matches as JSON (empty when not checked)."""

    name = "duplicates"
    columns = (("duplicates", lambda row: str(len(row.get("duplicates") or []))),)

    def __init__(self, options: Options):
        super().__init__(options)
        self.index_sets = list(options.index_sets) if options.index_sets else None
        self.index, self.problem = None, "index search is off"
        if options.search_index:
            self.index, self.problem = self._open()

    def _open(self):
        try:
            index = ReferenceIndex(self.options.db)
            sets = set(index.set_names())
        except Exception as e:  # noqa: BLE001
            return None, (
                f"the reference index could not be opened ({describe(e, with_path=False)})"
            )
        check_index_sets(self.index_sets, sets)
        if not sets:
            return None, "no banks in this workspace (add one with `provkit bank add`)"
        return index, None

    def collect(self, ctx: FileContext) -> Found:
        if self.index is None:
            return Found([not_checked("duplicates", self.problem)], [])
        try:
            query = ctx.fingerprint()
            matches = self.index.search(query, sets=self.index_sets, image=ctx.image)
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001
            why = f"index search failed ({describe(e, with_path=False)})"
            return Found([not_checked("duplicates", why)], [])
        rows = [m.to_json() for m in matches]
        return Found([duplicates_evidence(rows, self.index.clip_not_checked)], rows)

    def report_json(self, data) -> dict:
        return {"duplicates": list(data or [])}

    def context(self, data) -> dict:
        return {"duplicates": list(data or [])}


def duplicates_evidence(matches: list, clip_not_checked: dict | None = None) -> Evidence:
    """The near-duplicate item; ``clip_not_checked`` (set -> reason) names sets whose
    CLIP similarity could not be checked, so a hash-only search is never passed off as
    a full one."""
    rows = [m.to_json() if hasattr(m, "to_json") else dict(m) for m in matches]
    unchecked = dict(clip_not_checked or {})
    note = "".join(
        f" CLIP similarity not checked for bank {name}: {why}."
        for name, why in sorted(unchecked.items())
    )
    extra = {"clip_not_checked": unchecked} if unchecked else {}
    if not rows:
        return Evidence(
            "duplicates",
            "no match",
            "none",
            "No near-duplicate in the banks searched." + note,
            {"count": 0, **extra},
        )
    sets = sorted({str(r.get("bank", r.get("set"))) for r in rows})
    protected = sorted({str(r.get("bank", r.get("set"))) for r in rows if r.get("protected")})
    detail = f"{len(rows)} near-duplicate(s) in bank(s) {', '.join(sets)}"
    partners = [
        f"{r.get('bank', r.get('set'))}/{r['partner_id']}" for r in rows if r.get("partner_id")
    ]
    if partners:
        detail += f" (partner ids: {', '.join(partners[:5])}"
        detail += f" +{len(partners) - 5} more)" if len(partners) > 5 else ")"
    if protected:
        detail += f"; protected bank(s): {', '.join(protected)}"
    return Evidence(
        "duplicates",
        "match",
        "none",
        detail + "." + note,
        {"count": len(rows), "sets": sets, "banks": sets, "protected": protected, **extra},
    )
