"""Fixtures for the HTTP service: the real app over httpx, tokens, sealed and spoiled images."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec

from provkit.server import tokens
from provkit.server.app import create_service
from provkit.server.http import ServiceConfig
from tests.fixtures_provenance import flip_pixel_bytes

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``provkit serve`` in a child process; ``url`` once it answers."""

    def __init__(self, workspace: Path, *args: str):
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PROVKIT_HOME": str(workspace),
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "provkit.cli",
                "serve",
                "--port",
                str(self.port),
                "--out-dir",
                str(workspace / "served"),
                *args,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.proc.stdout.read().decode()}")
            try:
                if httpx.get(self.url + "/status", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("serve did not become ready")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def make_config(workspace: Path, **options) -> ServiceConfig:
    return ServiceConfig(
        db=str(workspace / "provkit.db"),
        out_dir=workspace / "served",
        temp_dir=workspace / "tmp",
        **options,
    )


def make_app(workspace: Path, **options):
    """The service as ``provkit serve`` runs it (the app behind the lookup fast path)."""
    return create_service(make_config(workspace, **options), refresh=0.2)


def token(workspace: Path, name: str, *scopes: str) -> dict:
    """Authorization headers of a new token NAME with ``scopes``."""
    created = tokens.create(name, scopes, db=workspace / "provkit.db")
    return {"Authorization": f"Bearer {created.secret}"}


@pytest.fixture(name="api")
def api_fixture(workspace):
    """A TestClient on the real app for this test's workspace (lifespan run)."""
    with TestClient(make_app(workspace)) as client:
        wait_ready(client)
        yield client


def wait_ready(client, seconds: float = 10) -> None:
    """Until /status says the reference sets are loaded."""
    import time

    deadline = time.monotonic() + seconds
    while client.get("/status").status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError("the server did not become ready")
        time.sleep(0.05)


def sealed_with_ingredient(tmp_path: Path, photo: Path, db) -> Path:
    """A photo signed, then edited and signed again with the first as its parent."""
    first = tmp_path / "original.jpg"
    issue(photo, first, spec=ManifestSpec(source_type="digitalCapture"), watermark=False, db=db)
    edited = tmp_path / "edited.jpg"
    img = Image.open(first).convert("RGB")
    img.crop((0, 0, img.width * 3 // 4, img.height * 3 // 4)).save(edited, quality=90)
    final = tmp_path / "final.jpg"
    issue(
        edited,
        final,
        spec=ManifestSpec(
            action="edited", source_type="digitalCapture", ingredients=((first, "parentOf"),)
        ),
        watermark=False,
        db=db,
    )
    return final


def tampered_copy(src: Path, dst: Path) -> Path:
    """The signed file with some pixel bytes flipped (the manifest left as it was)."""
    dst.write_bytes(flip_pixel_bytes(src.read_bytes(), count=8, before_end=3000))
    return dst


def jpeg(array, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=quality)
    return buf.getvalue()
