"""The light core install: a wheel of provkit, installed with its core dependencies only
into a fresh virtualenv, runs the everyday verbs without torch, OpenCV, open_clip,
onnxruntime or invisible-watermark.

Slow the first time (it builds a wheel and downloads the core dependencies from the
package index, minutes), so the plain suite leaves it out (``-m "not core_install"`` in
pyproject.toml) and ``make test-core-install``, which CI runs after ``make test``, runs it
with ``-m core_install``. ``$PROVKIT_WHEEL_CACHE`` (the Makefile points it into the venv)
keeps the downloaded wheels, so a rerun installs offline in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HEAVY = (
    "torch",
    "torchvision",
    "open_clip",
    "cv2",
    "onnxruntime",
    "imwatermark",
    "sklearn",
    "diffusers",
    "transformers",
    "faiss",
    "skimage",
)

pytestmark = [pytest.mark.slow, pytest.mark.core_install]


def _run(cmd, *, env, cwd=None, ok=(0,), timeout=600):
    out = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode not in ok:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {out.returncode}\n"
            f"stdout: {out.stdout[-3000:]}\nstderr: {out.stderr[-3000:]}"
        )
    return out


def _state(out) -> str:
    (report,) = json.loads(out.stdout)
    return report["c2pa"]["state"]


def _install(pip, python, wheel, cache: Path, env) -> None:
    """Install ``wheel`` and its dependencies into ``python``'s venv from the wheel cache,
    filling the cache from the package index first when it lacks something."""
    offline = [
        *pip,
        "--python",
        python,
        "install",
        "-q",
        "--no-compile",  # .pyc: minutes
        "--no-index",
        "--find-links",
        cache,
        wheel,
    ]
    if subprocess.run(
        [str(c) for c in offline], env=env, check=False, capture_output=True
    ).returncode:
        _run(
            [*pip, "wheel", "-q", "-w", cache, "--find-links", cache, wheel], env=env, timeout=1200
        )
        _run(offline, env=env)


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory):
    """A venv holding provkit's wheel and its core dependencies, nothing else."""
    tmp = tmp_path_factory.mktemp("core-install")
    src = tmp / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "demo-out",
            "bench-out",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".pytest_cache",
            ".hypothesis",
            ".ruff_cache",
            "tests",
            "bench",
            "shared",
        ),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "wheels", src],
        env=env,
    )
    wheel = next((tmp / "wheels").glob("provkit-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env=env)
    python = venv / "bin" / "python"
    cache = Path(os.environ.get("PROVKIT_WHEEL_CACHE") or tmp / "wheel-cache")
    cache.mkdir(parents=True, exist_ok=True)
    _install(pip, python, wheel, cache, env)
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env=env
        ).stdout.strip()
    )
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PROVKIT_HOME"] = str(tmp / "home")
    return {
        "python": python,
        "provkit": venv / "bin" / "provkit",
        "env": env,
        "tmp": tmp,
        "site": site,
    }


def test_core_install_has_none_of_the_heavy_libraries(core_venv):
    probe = (
        "import importlib.util, json, sys; "
        f"print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {HEAVY!r}}}))"
    )
    found = json.loads(_run([core_venv["python"], "-c", probe], env=core_venv["env"]).stdout)
    assert not any(found.values()), {m for m, there in found.items() if there}
    out = _run([core_venv["python"], "-c", "import torch"], env=core_venv["env"], ok=(1,))
    assert "No module named 'torch'" in out.stderr
    size = sum(p.stat().st_size for p in core_venv["site"].rglob("*") if p.is_file())
    print(f"core install: {size / 2**20:.0f} MiB (without .pyc) in {core_venv['site']}")


def test_core_install_runs_the_everyday_verbs(core_venv, photos):
    env, tmp, provkit = core_venv["env"], core_venv["tmp"], core_venv["provkit"]

    def cli(*args, ok=(0,)):
        return _run([provkit, *args], env=env, cwd=tmp, ok=ok)

    cli("keys", "init", "--org", "Core Install Test")
    cli(
        "generate",
        "a quiet harbour at dawn",
        "-n",
        "1",
        "--seed",
        "7",
        "--size",
        "256x256",
        "-o",
        tmp / "gen",
    )
    generated = next((tmp / "gen").glob("*.png"))
    assert _state(cli("verify", "--json", generated)) in ("valid", "trusted")

    photo = tmp / "photo.jpg"
    Image.fromarray(photos[0]).save(photo, quality=92)
    cli("sign", photo, "-o", tmp / "photo.signed.jpg", "--source-type", "digitalCapture")
    assert _state(cli("verify", "--json", tmp / "photo.signed.jpg")) in ("valid", "trusted")
    # the C2PA Trust List and the rubric files ship in the wheel
    assert "C2PA Trust List (2026-08-05)" in cli("trust", "list").stdout

    report = json.loads(cli("detect", "--json", generated).stdout)
    assert report["verdict"] == "ai-generated"

    archive = tmp / "archive"
    archive.mkdir()
    Image.fromarray(photos[2]).save(archive / "coffee.jpg", quality=92)
    cli("index", "add", "archive", archive)
    recycled = tmp / "recycled.jpg"
    Image.fromarray(photos[2]).resize((300, 200)).save(recycled, quality=60)
    dupes = cli("dupes", "--json", "--index", "archive", recycled).stdout
    assert "coffee.jpg" in dupes

    cli(
        "policy",
        "check",
        "--pack",
        "newsroom",
        "--point",
        "publish",
        generated,
        tmp / "photo.signed.jpg",
        ok=(0, 1),
    )
    assert json.loads(cli("audit", "verify", "--json").stdout)["ok"] is True


def test_a_verb_needing_an_extra_names_the_pip_install(core_venv, photos):
    env, tmp, provkit = core_venv["env"], core_venv["tmp"], core_venv["provkit"]
    image = tmp / "square.png"
    arr = np.asarray(Image.fromarray(photos[0]).resize((256, 256)))
    Image.fromarray(arr).save(image)
    out = _run([provkit, "detect", "--clip", "ViT-B-32:random", image], env=env, ok=(2,))
    assert out.stderr.strip().splitlines()[-1].endswith("pip install 'provkit[clip]'")
    out = _run(
        [
            provkit,
            "watermark",
            "embed",
            "--scheme",
            "dwtDct",
            "--payload",
            "00" * 8,
            image,
            "-o",
            tmp / "marked.png",
        ],
        env=env,
        ok=(2,),
    )
    assert "pip install 'provkit[bench]'" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_the_install_has_one_import_name(core_venv):
    """From a folder outside the repository: ``import provkit`` and its verbs work, and none
    of the repository's folder names is importable on its own."""
    env, tmp, python = core_venv["env"], core_venv["tmp"], core_venv["python"]
    code = (
        "import importlib.util, json, provkit; "
        "assert callable(provkit.verify) and callable(provkit.sign); "
        "assert callable(provkit.detect) and callable(provkit.generate); "
        "print(json.dumps({m: importlib.util.find_spec(m) is not None "
        "for m in ('provenance', 'detect', 'generate', 'policies')}))"
    )
    found = json.loads(_run([python, "-c", code], env=env, cwd=tmp).stdout)
    assert found == {"provenance": False, "detect": False, "generate": False, "policies": False}
    tops = sorted(
        p.name
        for p in core_venv["site"].iterdir()
        if p.name in ("provkit", "provenance", "detect", "generate", "policies")
    )
    assert tops == ["provkit"]
