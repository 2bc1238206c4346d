"""CLIP embedding throughput: provkit's detect.clip against a naive open_clip loop.

Both embed the same 3 MP JPEGs with the same randomly initialised weights (no
download; throughput does not depend on the weights' values) and the script checks
that they agree. The naive loop is what open_clip's README shows: PIL open, the
model's preprocess transform, encode_image one image at a time.

    python bench/clip.py [--n 16] [--arch ViT-B-32] [--width 2048 --height 1536] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# A bench works in throwaway workspaces of its own: signing there makes a development
# identity, as `--dev-identity` asks (it is never made silently elsewhere).
os.environ.setdefault("PROVKIT_DEV_IDENTITY", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path[:1]:  # the package, not bench/detect.py, must be `detect`
    sys.path.insert(0, str(ROOT))


def make_jpegs(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """``n`` distinct photographic JPEGs of ``size`` made from scikit-image's photos."""
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        base = Image.fromarray(photos[i % len(photos)])
        w, h = base.size
        box = (int(rng.integers(0, w // 8)), int(rng.integers(0, h // 8)))
        img = base.crop((box[0], box[1], box[0] + w * 7 // 8, box[1] + h * 7 // 8))
        img = img.resize(size, Image.BICUBIC)
        paths.append(folder / f"img{i:04d}.jpg")
        img.save(paths[-1], quality=90)
    return paths


def naive_loop(arch: str, paths: list[Path], device: str = "cpu"):
    import open_clip
    import torch
    from provkit.detect.clip import _quiet_logging, register_tiny_config

    register_tiny_config()
    with torch.random.fork_rng(devices=[]), _quiet_logging():
        torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None)
    model = model.to(device).eval()
    out = []
    for p in paths[:2]:  # warm-up
        with torch.no_grad():
            model.encode_image(preprocess(Image.open(p).convert("RGB")).unsqueeze(0).to(device))
    start = time.perf_counter()
    for p in paths:
        x = preprocess(Image.open(p).convert("RGB")).unsqueeze(0).to(device)
        with torch.no_grad():
            f = model.encode_image(x)
        out.append((f / f.norm(dim=-1, keepdim=True))[0].float().cpu().numpy())
    return np.stack(out), time.perf_counter() - start


def provkit_embed(arch: str, paths: list[Path], batch_size: int, device: str = "cpu"):
    from provkit.detect.clip import load_model

    model = load_model(f"{arch}:random", device=device)
    model.embed_images(paths[:2], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    emb = model.embed_images(paths, batch_size=batch_size)
    return emb, time.perf_counter() - start


def run(
    n: int = 16,
    arch: str = "ViT-B-32",
    size: tuple[int, int] = (2048, 1536),
    batch_size: int = 32,
    device: str = "auto",
) -> dict:
    """Measure both pipelines in this process; print and return the figures."""
    import torch
    from provkit.detect.clip import pick_device

    device = pick_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_jpegs(Path(tmp), n, size)
        ours, t_ours = provkit_embed(arch, paths, batch_size, device)
        ref, t_ref = naive_loop(arch, paths, device)
    # Random weights map every image near one direction, so compare what differs between
    # images: cosine of the embeddings after removing the naive loop's mean embedding.
    centre = ref.mean(axis=0)
    a, b = ours - centre, ref - centre
    agreement = float(
        np.min(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    )
    result = {
        "arch": arch,
        "images": n,
        "size": f"{size[0]}x{size[1]}",
        "threads": torch.get_num_threads(),
        "device": device,
        "provkit_img_s": n / t_ours,
        "naive_img_s": n / t_ref,
        "ratio": t_ref / t_ours,
        "min_cosine_vs_naive": agreement,
    }
    print(
        f"CLIP embedding, {arch} (random init), {n} JPEGs {result['size']}, "
        f"{device}, {result['threads']} CPU threads: provkit {result['provkit_img_s']:.1f} img/s, "
        f"naive open_clip loop {result['naive_img_s']:.1f} img/s -> "
        f"{result['ratio']:.2f}x (goal >= 1.5x); min centred cosine vs naive {agreement:.3f}"
    )
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=1536)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    a = ap.parse_args(argv)
    run(a.n, a.arch, (a.width, a.height), a.batch_size, a.device)


if __name__ == "__main__":
    main()
