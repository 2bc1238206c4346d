"""Optional extras: a verb needing a library outside the core names the one
``pip install 'provkit[EXTRA]'`` to run; the core (built-in generator included) needs none.

Libraries are made unimportable by setting ``sys.modules[name] = None`` (what Python does
for a module it could not find), so these run in the full development install too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from provkit.generate.backends import get_backend
from provkit.provenance.core.errors import ConfigError
from provkit.provenance.core.extras import EXTRAS, available, install_hint, require


def test_require_returns_the_module_when_it_is_installed():
    assert require("clip", "json") is json
    assert available("json") and not available("provkit_no_such_library")


def test_a_missing_library_is_one_line_naming_the_extra_to_install():
    with pytest.raises(ConfigError) as err:
        require("bench", "provkit_no_such_library", what="this verb")
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "provkit_no_such_library is not installed: this verb needs it; pip install 'provkit[bench]'"
    )
    assert err.value.exit_code == 2


def test_every_extra_the_code_names_exists_in_pyproject():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    declared = set(project["project"]["optional-dependencies"])
    assert set(EXTRAS) <= declared
    with pytest.raises(ValueError):
        install_hint("no-such-extra")


@pytest.mark.parametrize("blocked", ["open_clip", "torch"])
def test_clip_without_its_libraries_names_the_clip_extra(monkeypatch, blocked):
    from provkit.detect import clip

    monkeypatch.setitem(sys.modules, blocked, None)
    monkeypatch.setattr(clip, "_CACHE", {})
    with pytest.raises(ConfigError, match=r"CLIP needs it; pip install 'provkit\[clip\]'$"):
        clip.load_model("ViT-B-32:random")


def test_probe_training_without_scikit_learn_names_the_clip_extra(monkeypatch):
    from provkit.detect.classifier import _platt

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(ConfigError, match=r"^scikit-learn is not installed: probe training"):
        _platt(np.array([0.1, 0.9]), np.array([0, 1]))


def test_invisible_watermark_schemes_without_imwatermark_name_the_bench_extra(monkeypatch):
    from provkit.provenance import watermark

    monkeypatch.setitem(sys.modules, "imwatermark", None)
    image = Image.new("RGB", (300, 300), (120, 130, 140))
    with pytest.raises(
        ConfigError,
        match=r"invisible-watermark is not installed: the dwtDct "
        r"watermark needs it; pip install 'provkit\[bench\]'",
    ):
        watermark.embed(image, b"\0" * 8, scheme="dwtDct")


def test_generator_backends_name_their_extras(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ConfigError, match=r"pip install 'provkit\[diffusers\]'$"):
        get_backend("diffusers", model=str(tmp_path))
    weights = tmp_path / "g.pt"
    weights.write_bytes(b"x")
    with pytest.raises(
        ConfigError, match=r"the gan backend needs it; pip install 'provkit\[torch\]'"
    ):
        get_backend("gan", module="json:JSONDecoder", weights=str(weights))
    with pytest.raises(ConfigError, match=r"pip install 'provkit\[torch\]'$"):
        get_backend("builtin", device="cuda").describe()


def test_builtin_generator_paints_and_describes_itself_without_importing_torch():
    code = (
        "import sys\n"
        "from provkit.generate.backends import get_backend\n"
        "from provkit.generate.request import GenerationRequest\n"
        "b = get_backend('builtin')\n"
        "img = next(iter(b.render(GenerationRequest('a harbour', seed=1, width=64, height=48))))\n"
        "assert img.size == (64, 48), img.size\n"
        "assert b.describe().parameters['engine'] == 'numpy'\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_builtin_torch_engine_paints_the_numpy_picture_to_within_one_level():
    pytest.importorskip("torch")
    for prompt, seed, init in (
        ("a quiet harbour at dawn", 7, None),
        ("neon jungle", 3, None),
        ("x", 5, Image.linear_gradient("L").convert("RGB")),
    ):
        pictures = []
        for engine in ("numpy", "torch"):
            backend = get_backend("builtin", device="cpu", engine=engine)
            guide = None if init is None else init.resize((160, 120))
            pictures.append(np.asarray(backend.paint(prompt, seed, 160, 120, guide, 0.4), int))
        diff = np.abs(pictures[0] - pictures[1])
        assert diff.max() <= 1
        assert (diff > 0).mean() < 1e-3
