"""Sealing: the only way a generated image leaves provkit.

For one generation run :func:`seal_all` does, in order::

    policy(generate.request) -> backend.render -> for each image:
        fresh asset id -> issue() [watermark -> C2PA sign -> ledger]
        -> protected-set near-duplicate check -> policy(generate.output) -> SealedImage

Each step is a small function, so a step can be replaced without touching the others.
Nothing a backend yields reaches the caller or the disk before ``issue()`` has
watermarked, signed and recorded it. When the backend runs on a GPU, image *i* is
sealed on a worker thread while the GPU renders the next batch, so most of the sealing
time hides behind generation; results still come back only sealed, and in order.

Each output is sealed into ``$PROVKIT_HOME/staging/<run id>`` and recorded ``staged``
in the ledger; it is moved into the output folder, and marked ``issued``, only when the
checks release it (allow or label). An output the policy denies (or sends to review) is
moved into ``$PROVKIT_HOME/quarantine`` and marked ``withheld`` (or ``review``) in the
generation log and the ledger; so is one whose checks fail to run (a failed
protected-set search holds it for review; any other error withholds it), one the run is
interrupted on (Ctrl-C: quarantined and withheld, then the interrupt goes on), and one
that cannot be moved into the output folder. The move is all or nothing, across file
systems too: the output folder never holds a partial file.

Why one module of over 400 lines: sealing is one all-or-nothing transaction per run
(stage, watermark and sign, record, check, then release or quarantine) whose steps
share the run's state and its interrupt handling; the checks and the run log are
already modules of their own (generate.checks, generate.runlog).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image
from provkit.generate import checks, runlog
from provkit.generate.request import BackendInfo, GenerationRequest, check_sealable
from provkit.generate.results import GenerationFailure, GenerationRun, RequestRefused, SealedImage
from provkit.provenance.core import workspace
from provkit.provenance.core.errors import BadInput, ConfigError, ProvkitError, Refused, describe
from provkit.provenance.core.files import atomic_move
from provkit.provenance.core.vocabulary import TRAINING_USES
from provkit.provenance.issue import issue, new_asset_id
from provkit.provenance.ledger import ledger_store
from provkit.provenance.manifest import ManifestSpec

__all__ = [
    "GenerationFailure",
    "GenerationRun",
    "SealOptions",
    "SealedImage",
    "manifest_spec",
    "output_name",
    "seal",
    "seal_all",
]

FORMATS = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp"}
#: images rendered but not yet sealed, at most (bounds memory when sealing is the slower side)
MAX_PENDING = 3
#: read size when an output is copied into an output folder on another file system
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class SealOptions:
    """How to seal: what the manifest says, which policy applies, where files go."""

    out_dir: Path | None = None
    format: str = "png"
    record_prompt: bool = False
    allow_training: bool = False
    author: str | None = None
    policy: Any = None  # a pack name, path, or loaded pack; None = no policy checks
    actor: dict | None = None
    db: Any = None  # database path or sqlite-utils Database (default: workspace)
    identity: Any = None  # signing identity (default: the workspace identity)
    check_protected: bool = True
    init_path: Path | None = None  # the init image's file, for the parentOf ingredient
    disclosure: Any = None  # a provenance.disclosure.Profile: what the laws ask (None: none)

    def __post_init__(self):
        if self.format.lower() not in FORMATS:
            raise BadInput(f"format must be png, jpeg or webp, not {self.format!r}")


# --------------------------------------------------------------------------- one image


def manifest_spec(
    request: GenerationRequest,
    info: BackendInfo,
    *,
    seed: int,
    index: int,
    size: tuple[int, int],
    options: SealOptions,
    ingredient: Path | None,
):
    """The ManifestSpec for one generated image."""

    params: dict[str, Any] = {
        "seed": seed,
        "index": index,
        "width": size[0],
        "height": size[1],
        "steps": request.steps,
        "guidance": request.guidance,
        "backend": info.name,
        "backend_version": info.version,
        "model": info.model,
        "weights_sha256": info.weights_sha256,
        "backend_parameters": info.parameters,
    }
    if options.record_prompt:
        params["prompt"] = request.prompt
        if request.negative_prompt:
            params["negative_prompt"] = request.negative_prompt
    else:
        params["prompt_sha256"] = request.prompt_sha256
        if request.negative_prompt:
            params["negative_prompt_sha256"] = request.negative_prompt_sha256
    if request.init_image is not None:
        params["strength"] = request.strength
    params = {k: v for k, v in params.items() if v is not None}
    extra = ()
    if options.allow_training:
        extra = (
            {
                "label": "cawg.training-mining",
                "data": {"entries": {u: {"use": "allowed"} for u in TRAINING_USES}},
            },
        )
    ingredients = ((ingredient, "parentOf"),) if ingredient is not None else ()
    return ManifestSpec(
        source_type=info.source_type,
        # C2PA: an asset with a parentOf ingredient starts with c2pa.opened, so
        # image-to-image is "opened + edited" by the model rather than "created".
        action="c2pa.edited" if ingredients else "c2pa.created",
        software_agent={"name": info.agent_name, "version": info.version},
        parameters=params,
        author=options.author,
        no_train=not options.allow_training,
        ingredients=ingredients,
        extra_assertions=extra,
    )


def output_name(
    info: BackendInfo, request: GenerationRequest, seed: int, asset_id: str, options: SealOptions
) -> str:
    """``provkit-builtin-s42-<asset id>.png``; with --record-prompt the prompt's words lead."""
    stem = re.sub(r"[^a-z0-9]+", "-", info.name.lower()).strip("-") or "image"
    if options.record_prompt:
        words = re.sub(r"[^a-z0-9]+", "-", request.prompt.lower()).strip("-")[:40].strip("-")
        stem = words or stem
    return f"{stem}-s{seed}-{asset_id}{FORMATS[options.format.lower()]}"


def seal(
    image: Image.Image,
    request: GenerationRequest,
    backend_info: BackendInfo,
    out_path,
    *,
    seed: int | None = None,
    index: int = 0,
    options: SealOptions | None = None,
    asset_id: str | None = None,
    ingredient: Path | None = None,
    status: str = "issued",
) -> SealedImage:
    """Watermark, sign and record one generated image into ``out_path``.

    The issuing step alone (no policy, no duplicate check); :func:`seal_all` wraps it
    with those, sealing with ``status="staged"`` until they pass. Raises ProvkitError
    if the image cannot be sealed; then nothing is written.
    """

    options = options or SealOptions()
    seed = request.seed if seed is None else seed
    if not isinstance(image, Image.Image):
        raise BadInput(f"a backend yielded {type(image).__name__}, not a PIL image")
    if image.mode != "RGB":
        image = image.convert("RGB")
    spec = manifest_spec(
        request,
        backend_info,
        seed=seed,
        index=index,
        size=image.size,
        options=options,
        ingredient=ingredient,
    )
    issued = issue(
        image,
        out_path,
        spec=spec,
        watermark=True,
        db=options.db,
        identity=options.identity,
        asset_id=asset_id or new_asset_id(),
        status=status,
        disclosure=options.disclosure,
    )
    return SealedImage(
        asset_id=issued.asset_id,
        path=str(issued.path),
        mime=issued.mime,
        sha256=issued.sha256,
        manifest_label=issued.manifest_label,
        seed=seed,
        index=index,
        width=image.width,
        height=image.height,
        source_type=issued.source_type or backend_info.source_type,
        software_agent=backend_info.software_agent,
        signer=issued.signer,
        watermarked=issued.watermarked,
        watermark_skipped=issued.watermark_skipped,
        disclosures=issued.disclosures,
    )


# --------------------------------------------------------------------------- a whole run


_STOP = threading.Event()


def request_stop() -> None:
    """Ask running ``seal_all`` calls to stop after the images already being sealed.

    Safe to call from a signal handler: nothing is raised mid-seal (an exception raised
    inside the C2PA library's callbacks would be swallowed there); the loop stops at the
    next image and raises KeyboardInterrupt once what was handed over is finished."""
    _STOP.set()


def stop_requested() -> bool:
    """Whether :func:`request_stop` was called and the run has not finished stopping."""
    return _STOP.is_set()


def seal_all(
    backend,
    request: GenerationRequest,
    options: SealOptions,
    *,
    on_result: Callable[[SealedImage | GenerationFailure], None] | None = None,
    batch_size: int | None = None,
    overlap: bool | None = None,
) -> GenerationRun:
    """Run ``backend`` on ``request`` and seal every image; never stops on one failure.

    A deny at ``generate.request`` raises :class:`Refused` before the backend runs.
    ``on_result`` is called with each result, in order, as soon as it is final.
    ``overlap``: seal on a worker thread while the backend renders the next batch. The
    default turns it on for backends running on a GPU (measured: the seal overhead of an
    SD-class model fell from 17-21% to 1-4%) and off on CPU, where the two compete for
    the same cores. Results are the same either way.
    """

    check_sealable(request.width, request.height)  # before the backend spends any time
    info = backend.describe()
    pack = checks.load_policy(options.policy)
    run_id = new_asset_id()
    db = runlog.open_log(options.db)
    base_ctx = checks.request_context(
        request, info, actor=options.actor, allow_training=options.allow_training
    )
    req_decision = checks.decide(
        pack, "generate.request", base_ctx, db=db, subject=f"prompt:{request.prompt_sha256[:16]}"
    )
    if req_decision is not None and checks.outcome(req_decision) == "deny":
        for i, s in enumerate(request.seeds):
            runlog.record(
                db,
                run_id,
                info,
                request,
                idx=i,
                seed=s,
                status="refused",
                stage="policy",
                reason=checks.reasons(req_decision),
            )
        raise RequestRefused(
            f"policy {getattr(pack, 'name', 'pack')} refused the request: "
            f"{checks.reasons(req_decision)}",
            decision=checks.decision_json(req_decision),
            run_id=run_id,
        )

    out_dir = Path(options.out_dir) if options.out_dir else workspace.home() / "generated"
    out_dir.mkdir(parents=True, exist_ok=True)
    db_file = _database_file(db)
    if overlap is None:
        overlap = bool(getattr(backend, "overlap_sealing", _on_accelerator(backend)))
    threaded = overlap and request.count > 1 and db_file is not None
    finisher = _Finisher(
        run_id=run_id,
        info=info,
        request=request,
        options=options,
        pack=pack,
        base_ctx=base_ctx,
        req_decision=req_decision,
        out_dir=out_dir,
        db=db_file if threaded else db,
    )
    executor = ThreadPoolExecutor(1, thread_name_prefix="provkit-seal") if threaded else None
    pending: deque[Future] = deque()
    results: list = []

    def submit(fn, *args) -> Future:
        if executor is not None:
            return executor.submit(fn, *args)
        f: Future = Future()
        f.set_result(fn(*args))
        return f

    def drain(keep: int) -> None:
        while len(pending) > keep:
            result = pending.popleft().result()
            results.append(result)
            if on_result:
                on_result(result)

    with _ingredient_file(request, options) as ingredient:
        try:
            for i, seed, image in _rendered(backend, request, batch_size):
                if _STOP.is_set():
                    break
                pending.append(submit(finisher.finish, i, seed, image, ingredient))
                drain(MAX_PENDING)
            drain(0)
            if _STOP.is_set():
                _STOP.clear()
                raise KeyboardInterrupt
        finally:  # images already handed over are sealed (or failed) before we return
            if executor is not None:
                executor.submit(finisher.close)
                executor.shutdown(wait=True)
            with contextlib.suppress(OSError):  # kept if a file could not leave it
                finisher.staging.rmdir()
    return GenerationRun(
        run_id=run_id,
        backend=info,
        sealed=tuple(r for r in results if isinstance(r, SealedImage)),
        failed=tuple(r for r in results if isinstance(r, GenerationFailure)),
        request_decision=checks.decision_json(req_decision),
        protected_sets=finisher.protected_status,
    )


class _Finisher:
    """Seals, checks and records one rendered image; runs on the sealing thread.

    It opens its own database connection there when given a file path (SQLite
    connections belong to the thread that made them)."""

    def __init__(
        self, *, run_id, info, request, options, pack, base_ctx, req_decision, out_dir, db
    ):
        self.run_id, self.info, self.request, self.pack = run_id, info, request, pack
        self.base_ctx, self.req_decision, self.out_dir = base_ctx, req_decision, out_dir
        self.staging = runlog.staging_dir() / run_id
        self._db_arg = db
        self._own_db = isinstance(db, (str, os.PathLike))
        self.db = None if self._own_db else db
        self.options = options
        self.protected = None
        self.protected_status = (
            "not checked" if options.check_protected else "not checked (turned off)"
        )

    def _ready(self) -> None:
        if self.db is None:
            self.db = workspace.database(self._db_arg)
        if self.options.db is not self.db:
            self.options = replace(self.options, db=self.db)
        if self.protected is None:
            self.protected = checks.ProtectedCheck(self.db, self.options.check_protected)
            self.protected_status = self.protected.status

    def close(self) -> None:
        if self._own_db and self.db is not None:
            self.db.conn.close()
            self.db = None

    def finish(self, i: int, seed: int, image, ingredient) -> SealedImage | GenerationFailure:
        try:
            self._ready()
            if isinstance(image, BaseException):
                stage = "safety" if isinstance(image, Refused) else "backend"
                return self._fail(i, seed, stage, describe(image))
            return self._seal_and_check(i, seed, image, ingredient)
        except Exception as e:  # noqa: BLE001 - one image's failure must not stop the run
            return self._fail(i, seed, "seal", describe(e))

    def _seal_and_check(self, i, seed, image, ingredient):

        asset_id = new_asset_id()
        name = output_name(self.info, self.request, seed, asset_id, self.options)
        # Sealed into this run's staging folder and recorded "staged": only an output
        # the checks let through ever appears in out_dir or is marked "issued".
        staged, final = self.staging / name, self.out_dir / name
        item = None
        try:
            item = seal(
                image,
                self.request,
                self.info,
                staged,
                seed=seed,
                index=i,
                options=self.options,
                asset_id=asset_id,
                ingredient=ingredient,
                status="staged",
            )
            return self._check_and_release(i, seed, image, item, final)
        except BaseException as e:  # an unchecked output is never released, even on Ctrl-C
            if item is None and not staged.exists():  # issue() left nothing behind
                if isinstance(e, ProvkitError):
                    return self._fail(i, seed, "seal", str(e))
                raise
            failure = self._withhold_unchecked(i, seed, asset_id, staged, final, e)
            if not isinstance(e, Exception):
                raise
            return failure

    def _check_and_release(self, i, seed, image, item, final: Path):
        check_failed = None
        try:
            duplicates = self.protected.search(image)
            item = replace(
                item, duplicates=tuple(duplicates), duplicate_check=self.protected.status
            )
        except ProvkitError as e:
            duplicates = []
            check_failed = f"the protected-set check failed: {e}"
            item = replace(item, duplicate_check=f"failed: {e}")
        decision = None
        if self.pack is not None:
            decision = checks.decide(
                self.pack,
                "generate.output",
                checks.output_context(self.base_ctx, item, duplicates),
                db=self.db,
                subject=f"asset:{item.asset_id}",
            )
        outcome = checks.outcome(decision) if decision is not None else "allow"
        held = self.req_decision is not None and checks.outcome(self.req_decision) == "review"
        if (held or check_failed) and outcome != "deny":
            outcome = "review"
        if outcome in ("deny", "review"):
            moved = self._quarantine(item.path)
            if outcome == "deny":
                why = f"withheld by policy: {checks.reasons(decision)}"
            elif check_failed:
                why = f"held for review: {check_failed}"
            else:
                source = (
                    decision
                    if decision is not None and checks.outcome(decision) == "review"
                    else self.req_decision
                )
                why = f"held for review: {checks.reasons(source)}"
            ledger_store(self.db).mark(
                item.asset_id, "withheld" if outcome == "deny" else "review", reason=why, path=moved
            )
            return self._fail(
                i,
                seed,
                "policy" if outcome == "deny" else "review",
                why,
                asset_id=item.asset_id,
                quarantined_path=str(moved),
            )
        decisions = tuple(
            d
            for d in (checks.decision_json(self.req_decision), checks.decision_json(decision))
            if d
        )
        try:
            atomic_move(Path(item.path), final)
        except OSError as e:
            raise _NotReleased(
                f"the output could not be moved into {final.parent} ({e.strerror or e})"
            ) from e
        item = replace(
            item,
            path=str(final),
            labels=tuple(getattr(decision, "labels", ()) or ()),
            decisions=decisions,
        )
        ledger_store(self.db).mark(item.asset_id, "issued", path=final)
        runlog.record(
            self.db,
            self.run_id,
            self.info,
            self.request,
            idx=i,
            seed=seed,
            status="released",
            asset_id=item.asset_id,
            path=item.path,
        )
        return item

    def _quarantine(self, path) -> Path:
        moved = runlog.quarantine_dir() / Path(path).name
        atomic_move(Path(path), moved)
        return moved

    def _withhold_unchecked(
        self, i, seed, asset_id: str, staged: Path, final: Path, error: BaseException
    ) -> GenerationFailure:
        """Sealing succeeded but a check, or the release, did not complete (it raised,
        or the run was interrupted): quarantine the file and record it withheld."""
        if isinstance(error, _NotReleased):
            why = f"withheld: {error}"
        elif not isinstance(error, Exception):
            why = (
                f"withheld: the run was interrupted ({type(error).__name__}) before the "
                "output checks completed"
            )
        else:
            why = f"withheld: the output checks did not complete ({describe(error)})"
        # The file is whole at exactly one place: still staged, already quarantined, or
        # (released, then a later step failed) in the output folder.
        quarantined = runlog.quarantine_dir() / staged.name
        moved = None
        if quarantined.exists():
            moved = quarantined
        else:
            where = staged if staged.exists() else final if final.exists() else None
            if where is not None:
                try:
                    moved = self._quarantine(where)
                except OSError:
                    moved = where
        try:
            ledger_store(self.db).mark(asset_id, "withheld", reason=why, path=moved)
        except Exception:  # noqa: BLE001, S110 - the database itself may be what failed
            pass
        try:
            return self._fail(
                i,
                seed,
                "policy",
                why,
                asset_id=asset_id,
                quarantined_path=str(moved) if moved else None,
            )
        except Exception:  # noqa: BLE001 - same: the failure is still reported
            return GenerationFailure(
                index=i,
                seed=seed,
                stage="policy",
                error=why,
                asset_id=asset_id,
                quarantined_path=str(moved) if moved else None,
            )

    def _fail(self, i, seed, stage, error, **kw) -> GenerationFailure:
        failure = GenerationFailure(index=i, seed=seed, stage=stage, error=error, **kw)
        status = "failed"
        if kw.get("asset_id"):
            status = "review" if stage == "review" else "withheld"
        if self.db is not None:
            runlog.record(
                self.db,
                self.run_id,
                self.info,
                self.request,
                idx=i,
                seed=seed,
                status=status,
                stage=stage,
                reason=error,
                asset_id=kw.get("asset_id"),
                path=kw.get("quarantined_path"),
            )
        return failure


class _NotReleased(Exception):
    """A checked output could not be moved into the output folder."""


def _on_accelerator(backend) -> bool:
    return str(getattr(backend, "device", "")).startswith(("cuda", "mps"))


def _database_file(db) -> str | None:
    """The file behind a sqlite-utils Database (None for an in-memory one)."""
    row = db.conn.execute("PRAGMA database_list").fetchone()
    return row[2] or None if row else None


def _rendered(backend, request: GenerationRequest, batch_size: int | None) -> Iterator:
    """(index, seed, image or exception) for every image asked for, batch by batch."""
    size = max(1, int(batch_size or getattr(backend, "batch_size", 1) or 1))
    seeds = request.seeds
    for start in range(0, request.count, size):
        chunk = request.chunk(start, size)
        produced = 0
        try:
            for image in backend.render(chunk):
                if produced >= chunk.count:
                    break
                yield start + produced, seeds[start + produced], image
                produced += 1
            if produced < chunk.count:
                raise ConfigError(f"the backend made {produced} of {chunk.count} images")
        except Exception as e:  # noqa: BLE001 - one bad batch fails only its own images
            for j in range(produced, chunk.count):
                yield start + j, seeds[start + j], e


class _ingredient_file:
    """The init image as a file for the parentOf ingredient (a temp PNG if it has none)."""

    def __init__(self, request: GenerationRequest, options: SealOptions):
        self.request, self.options, self.tmp = request, options, None

    def __enter__(self) -> Path | None:
        if self.request.init_image is None:
            return None
        if self.options.init_path is not None:
            return Path(self.options.init_path)
        self.tmp = tempfile.TemporaryDirectory(prefix="provkit-init-")
        path = Path(self.tmp.name) / "init-image.png"
        self.request.init_image.save(path)
        return path

    def __exit__(self, *exc):
        if self.tmp is not None:
            self.tmp.cleanup()
