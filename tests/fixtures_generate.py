"""Small randomly initialised generative models for the generation tests and bench.

Nothing here downloads: the CLIP tokenizer is built from the BPE vocabulary that
open_clip ships inside its package; the other parts come from small configs.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import torch
from torch import nn

MERGES = 2000  # a truncated BPE still tokenizes any text (down to bytes) and keeps the vocab small


def bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table of CLIP's (and GPT-2's) byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def clip_bpe_file() -> Path:
    """open_clip's shipped BPE merges (or $PROVKIT_CLIP_BPE where open_clip is absent)."""
    if os.environ.get("PROVKIT_CLIP_BPE"):
        return Path(os.environ["PROVKIT_CLIP_BPE"])
    import open_clip.tokenizer as oct

    return Path(oct.__file__).with_name("bpe_simple_vocab_16e6.txt.gz")


def write_clip_tokenizer(folder: Path, merges: int = MERGES) -> int:
    """vocab.json + merges.txt for transformers' CLIPTokenizer; returns the vocabulary size.

    ``merges`` = 48894 gives the full CLIP vocabulary (49408 tokens)."""
    with gzip.open(clip_bpe_file(), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")[1 : merges + 1]
    pairs = [tuple(line.split()) for line in lines]
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(p) for p in pairs]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(p) for p in pairs) + "\n"
    )
    return len(vocab)


def build_tiny_sd(folder: Path) -> Path:
    """Save a tiny Stable-Diffusion-shaped pipeline (random weights) to ``folder``."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    tok_dir = folder.parent / (folder.name + "-tokenizer-src")
    vocab_size = write_clip_tokenizer(tok_dir)
    tokenizer = CLIPTokenizer(
        str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
        )
    )
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        norm_num_groups=32,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(steps_offset=1, clip_sample=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


class TinyDCGAN(nn.Module):
    """A DCGAN-style generator: latent (N, nz) -> image (N, 3, 32, 32) in [-1, 1]."""

    def __init__(self, nz: int = 16, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, width * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class TinyVAEDecoder(nn.Module):
    """A VAE decoder: latent (N, latent_dim) -> image (N, 3, 32, 32) in [0, 1]."""

    def __init__(self, latent_dim: int = 8):
        super().__init__()
        self.fc = nn.Linear(latent_dim, 32 * 8 * 8)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z):
        return self.up(self.fc(z).view(-1, 32, 8, 8))


def save_random_weights(module: nn.Module, path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    for p in module.parameters():
        nn.init.normal_(p, 0.0, 0.2)
    torch.save(module.state_dict(), path)
    return path


_TINY_SD: Path | None = None


def tiny_sd_path() -> Path:
    """The tiny pipeline, built once per test process into a temporary folder."""
    global _TINY_SD
    if _TINY_SD is None:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="provkit-tiny-sd-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _TINY_SD = build_tiny_sd(root / "tiny-sd")
    return _TINY_SD


def build_sd15_shaped(folder: Path, *, device: str = "cuda") -> Path:
    """A pipeline with Stable Diffusion 1.5's architecture and sizes but random weights.

    For timing only (the pictures are noise): the compute per step is that of SD 1.5.
    Saved in fp16 to ``folder``."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tok_dir = folder.parent / (folder.name + "-tokenizer-src")
    vocab_size = write_clip_tokenizer(tok_dir, merges=49152 - 256 - 2)
    tokenizer = CLIPTokenizer(
        str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=77
    )
    with torch.device(device):
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab_size,
                hidden_size=768,
                intermediate_size=3072,
                num_attention_heads=12,
                num_hidden_layers=12,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                projection_dim=768,
            )
        )
        unet = UNet2DConditionModel(
            sample_size=64,
            in_channels=4,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768,
            attention_head_dim=8,
        )
        vae = AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
        )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        clip_sample=False,
        set_alpha_to_one=False,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16).save_pretrained(folder)
    return folder
