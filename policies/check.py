"""Running packs over real inputs: evidence from files, prepared contexts, test cases.

``policy check`` needs detection evidence, but ``policies`` may not import ``detect``.
The evidence provider is therefore named by a plugin-style string,
``"provkit.detect.verdict:policy_context_for_file"`` by default, and resolved with importlib
only when files are checked; callers may also pass any callable
``evidence_fn(path, db=None) -> dict`` (the ``asset`` part of the context), or skip
evidence entirely with prepared contexts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from provkit.policies import yamllines
from provkit.policies.engine import Decision, decide, evaluate
from provkit.policies.fields import missing_fields
from provkit.policies.pack import POINTS, Pack, load_pack
from provkit.provenance.core import config as workspace_config
from provkit.provenance.core.errors import BadInput, ConfigError, ProvkitError
from provkit.provenance.core.files import read_head
from provkit.provenance.core.imageio import expand_inputs
from provkit.provenance.core.plugins import load_object
from provkit.provenance.core.vocabulary import STATES, VERDICTS

DEFAULT_EVIDENCE = "provkit.detect.verdict:policy_context_for_file"
#: Largest context file read.
MAX_CONTEXT_BYTES = 64 << 20


def resolve_evidence(spec: str = DEFAULT_EVIDENCE):
    """The callable named by ``"package.module:function"``, imported now."""
    if ":" not in spec:
        raise ConfigError(f"an evidence provider is 'module:function', not {spec!r}")
    try:
        fn = load_object(spec, what="evidence provider")
    except ConfigError as e:
        raise ConfigError(f"{e}; pass prepared evidence with --context FILE instead") from None
    if not callable(fn):
        raise ConfigError(
            f"evidence provider {spec} is not available: it is not callable; "
            "pass prepared evidence with --context FILE instead"
        )
    return fn


@dataclass(frozen=True)
class CheckResult:
    """One checked input: a file or a prepared context, and its decision or error."""

    source: str
    decision: Decision | None = None
    error: str | None = None

    def to_json(self) -> dict:
        out = {"source": self.source}
        if self.decision is not None:
            out.update(self.decision.to_json())
        if self.error is not None:
            out["error"] = self.error
        return out


def _actor(actor, role, org, base=None, *, source=None) -> dict:
    if base is not None and not isinstance(base, dict):
        raise BadInput(
            f'\'actor\' must be an object like {{"id": "..."}}, not {type(base).__name__} {base!r}'[
                :200
            ],
            path=source,
        )
    merged = dict(base or {})
    for key, value in (("id", actor), ("role", role), ("org", org)):
        if value is not None:
            merged[key] = value
    return merged


def _missing(pack: Pack, point: str, context: dict, source: str) -> None:
    """BadInput naming the fields the point's rules read that a prepared context lacks."""
    missing = missing_fields(pack, point, context)
    if missing:
        raise BadInput(
            f"the context lacks {', '.join(missing)}: the {pack.name} pack reads "
            f"{'it' if len(missing) == 1 else 'them'} at {point} (a scan row or "
            "`provkit check --json` record carries them all)",
            path=source,
        )


def _wrong_values(context: dict, source: str) -> None:
    """BadInput for a prepared context whose evidence fields hold values detect never
    writes: ``"AI-Generated"`` or ``["ai-generated"]`` as a verdict, ``"INVALID"`` as a
    state, a score that is not a probability. Such a value matches no rule, so the pack's
    default would decide (often allow): it is refused instead, naming the field."""
    import math

    asset = context.get("asset")
    if not isinstance(asset, dict):
        return

    def bad(field: str, value, want: str):
        raise BadInput(
            f"asset.{field} is {json.dumps(value)[:80]}, not {want} (the value "
            "detect writes; a prepared context is decided only on those)",
            path=source,
        )

    if "verdict" in asset and asset["verdict"] not in (None, *VERDICTS):
        bad("verdict", asset["verdict"], "one of " + ", ".join(VERDICTS))
    if "decided_by" in asset and not (
        isinstance(asset["decided_by"], list)
        and all(isinstance(k, str) for k in asset["decided_by"])
    ):
        bad("decided_by", asset["decided_by"], "a list of evidence names")
    score = asset.get("score")
    if score is not None and (
        isinstance(score, bool)
        or not isinstance(score, (int, float))
        or not math.isfinite(score)
        or not 0 <= score <= 1
    ):
        bad("score", score, "null or a probability from 0 to 1")
    c2pa = asset.get("c2pa")
    if isinstance(c2pa, dict):
        if "state" in c2pa and c2pa["state"] not in STATES:
            bad("c2pa.state", c2pa["state"], "one of " + ", ".join(STATES))
        if c2pa.get("trust_source") is not None and not isinstance(c2pa["trust_source"], str):
            bad("c2pa.trust_source", c2pa["trust_source"], "null or a trust source's name")
    elif c2pa is not None:
        bad("c2pa", c2pa, "an object")


def check(
    pack: Pack | str | None,
    paths=(),
    *,
    point: str | None = None,
    actor: str | None = None,
    role: str | None = None,
    org: str | None = None,
    contexts=(),
    db=None,
    evidence_fn=None,
    evidence: str = DEFAULT_EVIDENCE,
    on_item=None,
    trust=None,
    dry_run: bool = False,
) -> list[CheckResult]:
    """Decide for each file (through the evidence provider) and each prepared context.

    Every decision is appended to the audit log unless ``dry_run``. A file or context
    that cannot be used becomes a result with ``error`` set; the batch goes on: so does a
    prepared context that lacks a field the point's rules read (it is not decided).
    ``contexts`` holds ``(source_name, context_dict)`` pairs. ``on_item`` is called after
    each input. ``pack`` None takes the workspace configuration's pack for the point
    (``[policy]`` in provkit.toml). ``trust``: trust sources for the evidence provider,
    as verify takes them (default: ``[trust] sources``, else the workspace's CA).
    """
    cfg = workspace_config.load()
    if point is not None and point not in POINTS:
        raise BadInput(f"unknown decision point {point!r} (known: {', '.join(POINTS)})")
    if pack is None:
        pack = cfg.pack_for(point or "verify")
        if pack is None:
            raise ConfigError(
                f"no pack named and none configured for {point or 'verify'} "
                f'(pass --pack, or set [policy] {point or "verify"} = "NAME" in '
                f"{cfg.path})"
            )
    pack = load_pack(pack)
    trust = cfg.get("trust.sources", trust)
    results: list[CheckResult] = []
    paths = expand_inputs(paths)
    if paths and evidence_fn is None:
        evidence_fn = resolve_evidence(evidence)

    def run(at: str, context: dict, source: str) -> Decision:
        if dry_run:
            return evaluate(pack, at, context)
        return decide(pack, at, context, db=db)

    for path in paths:
        try:
            extra = {"trust": trust} if trust is not None else {}
            asset = evidence_fn(str(path), db=db, **extra)
            if hasattr(asset, "to_json") and not isinstance(asset, dict):
                asset = asset.to_json()
            context = {"actor": _actor(actor, role, org), "asset": asset}
            results.append(CheckResult(str(path), run(point or "verify", context, str(path))))
        except ProvkitError as e:
            results.append(CheckResult(str(path), error=str(e)))
        except Exception as e:  # noqa: BLE001 - one bad file never stops the batch
            results.append(CheckResult(str(path), error=f"{path}: {type(e).__name__}: {e}"))
        if on_item:
            on_item(results[-1])
    for source, context in contexts:
        try:
            if isinstance(context, ProvkitError):  # a line of a JSON-lines file that is bad
                raise context
            if not isinstance(context, dict):
                raise BadInput("a context must be a JSON object", path=source)
            context = dict(context)
            context["actor"] = _actor(actor, role, org, context.get("actor"), source=source)
            at = point or context.get("point") or "verify"
            _missing(pack, at, context, source)
            _wrong_values(context, source)
            results.append(CheckResult(source, run(at, context, source)))
        except ProvkitError as e:
            results.append(CheckResult(source, error=str(e)))
        except Exception as e:  # noqa: BLE001 - one bad context never stops the batch
            results.append(CheckResult(source, error=f"{source}: {type(e).__name__}: {e}"))
        if on_item:
            on_item(results[-1])
    return results


def read_contexts(path: str | Path) -> list[tuple[str, dict | BadInput]]:
    """Contexts from a JSON object, a JSON array of objects, or JSON lines.

    A JSON-lines file keeps going past a bad line: that line's entry is the BadInput
    (``check`` turns it into an error row). A file with no context at all is refused."""
    path = Path(path)
    try:
        raw = read_head(path, MAX_CONTEXT_BYTES + 1)  # a regular file only (no pipes)
        if len(raw) > MAX_CONTEXT_BYTES:
            raise BadInput(f"context file larger than {MAX_CONTEXT_BYTES >> 20} MB", path=path)
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BadInput(f"cannot read context file: {e}", path=path) from None
    if not text.strip():
        raise BadInput("no contexts in the file (it is empty)", path=path)
    try:
        data = json.loads(text)
        items = list(enumerate(data if isinstance(data, list) else [data], 1))
    except RecursionError:
        raise BadInput("context file is nested too deeply to read", path=path) from None
    except ValueError as e:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) == 1:  # one object, not JSON lines: say why it is not JSON
            raise BadInput(
                f"line {lines[0][0] if lines else 1} is not JSON: {e}", path=path
            ) from None
        items = []
        for n, line in lines:
            try:
                items.append((n, json.loads(line)))
            except RecursionError:
                items.append(
                    (n, BadInput(f"line {n} is nested too deeply to read", path=f"{path}#{n}"))
                )
            except ValueError as e:
                items.append((n, BadInput(f"line {n} is not JSON: {e}", path=f"{path}#{n}")))
        return [(f"{path}#{n}", item) for n, item in items]  # JSON lines: #N is the line
    if not items:
        raise BadInput("no contexts in the file (an empty JSON array)", path=path)
    if len(items) == 1:
        return [(str(path), items[0][1])]
    return [(f"{path}#{n}", item) for n, item in items]


# ---------------------------------------------------------------- pack test cases
@dataclass(frozen=True)
class CaseResult:
    name: str
    point: str
    passed: bool
    problems: tuple[str, ...]
    decision: Decision | None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "point": self.point,
            "passed": self.passed,
            "problems": list(self.problems),
            "decision": self.decision.to_json() if self.decision else None,
        }


def cases_path(pack: Pack) -> Path:
    """``cases.yaml`` beside ``pack.yaml``, or ``NAME.cases.yaml`` beside ``NAME.yaml``."""
    if pack.path.name == "pack.yaml":
        return pack.path.parent / "cases.yaml"
    return pack.path.with_name(pack.path.stem + ".cases.yaml")


def test_pack(pack: Pack | str, cases: str | Path | None = None) -> list[CaseResult]:
    """Run a pack's own test cases (inputs and expected decisions); nothing is audited."""
    pack = load_pack(pack)
    path = Path(cases) if cases is not None else cases_path(pack)
    try:
        data = yamllines.load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read test cases: {e.strerror or e}", path=path) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"test cases are not valid YAML: {e}", path=path) from None
    items = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ConfigError("test cases need a non-empty 'cases' list", path=path)
    results = []
    for i, case in enumerate(items, 1):
        name = str(case.get("name", f"case {i}")) if isinstance(case, dict) else f"case {i}"
        if not isinstance(case, dict) or not isinstance(case.get("expect"), dict):
            problem = "a case needs point, context and expect"
            results.append(CaseResult(name, "", False, (problem,), None))
            continue
        point = case.get("point", "verify")
        try:
            decision = evaluate(pack, point, case.get("context") or {})
        except ProvkitError as e:
            results.append(CaseResult(name, str(point), False, (str(e),), None))
            continue
        results.append(CaseResult(name, point, *_compare(case["expect"], decision), decision))
    return results


test_pack.__test__ = False  # a library verb, not a pytest test


def _compare(expect: dict, decision: Decision) -> tuple[bool, tuple[str, ...]]:
    problems = []
    if "outcome" in expect and expect["outcome"] != decision.outcome:
        problems.append(f"outcome {decision.outcome}, expected {expect['outcome']}")
    for key, got in (
        ("rules", decision.matched_rules),
        ("labels", decision.labels),
        ("failed_rules", decision.failed_rules),
    ):
        if key in expect and sorted(expect[key] or []) != sorted(got):
            problems.append(f"{key} {sorted(got)}, expected {sorted(expect[key] or [])}")
    for text in expect.get("reasons_contain", []) or []:
        if not any(text in r for r in decision.reasons):
            problems.append(f"no reason contains {text!r}")
    return not problems, tuple(problems)
