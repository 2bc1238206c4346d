"""The values a generation run returns: sealed images, failures, and the run itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from provkit.generate.request import BackendInfo
from provkit.provenance.core.errors import Refused
from provkit.provenance.core.imageio import open_image


class RequestRefused(Refused):
    """The policy denied the request at ``generate.request``; nothing was rendered.

    ``decision`` is the decision's JSON and ``run_id`` the run logged as refused."""

    def __init__(self, message: str, *, decision: dict | None, run_id: str):
        super().__init__(message)
        self.decision = decision
        self.run_id = run_id

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "refused": True,
            "error": str(self),
            "images": [],
            "failed": [],
            "request_decision": self.decision,
        }


@dataclass(frozen=True)
class SealedImage:
    """A generated image after sealing: the file and the credentials it carries."""

    asset_id: str
    path: str
    mime: str
    sha256: str
    manifest_label: str
    seed: int
    index: int
    width: int
    height: int
    source_type: str
    software_agent: str
    signer: dict
    watermarked: bool = True
    watermark_skipped: str | None = None  # why the mark was left out (it would not read back)
    status: str = "released"
    labels: tuple = ()
    duplicates: tuple = ()
    duplicate_check: str = "not checked"
    decisions: tuple = ()
    #: what the disclosure profile wrote (provenance.issue.Issued.disclosures)
    disclosures: dict | None = None

    @property
    def bytes(self) -> bytes:
        """The sealed file's bytes (watermarked pixels with the C2PA manifest embedded)."""
        return Path(self.path).read_bytes()

    def open(self) -> Image.Image:
        """The sealed image as PIL (through provkit's one image loader)."""

        return open_image(self.path)

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["labels"] = list(self.labels)
        d["duplicates"] = [dict(m) for m in self.duplicates]
        d["decisions"] = [dict(x) for x in self.decisions]
        return d


@dataclass(frozen=True)
class GenerationFailure:
    """An image that did not come out: which one, and why."""

    index: int
    seed: int
    stage: str  # backend | seal | policy | safety
    error: str
    asset_id: str | None = None
    quarantined_path: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class GenerationRun:
    """Everything one run produced: the sealed images and the failures, in order."""

    run_id: str
    backend: BackendInfo
    sealed: tuple[SealedImage, ...]
    failed: tuple[GenerationFailure, ...]
    request_decision: dict | None = None
    protected_sets: str = "not checked"

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id,
            "backend": self.backend.to_json(),
            "images": [s.to_json() for s in self.sealed],
            "failed": [f.to_json() for f in self.failed],
            "request_decision": self.request_decision,
            "protected_sets": self.protected_sets,
        }
