"""A tiny kit that ComfyUI core's own loaders accept, for the native-path tests.

Core fixes parts of the architecture that our tiny kit shrinks (docs/native_comfyui.md):
- Load Diffusion Model: its CogVideoX detector reads heads as width // 64, so the DiT keeps
  64-wide heads (2 of them, 1 layer); `in_channels` 32 = 16 + 16 makes it core's I2V class;
  the file is in core's key layout (native_layout) and carries the IITF layers;
- Load VAE: core builds every CogVideoX VAE with the CogVideoX-5B widths (128/256/256/512,
  3 layers per block, 32 groups); only the latent channels are read from the file, so this
  VAE is full size (215 M parameters, random, stored in bfloat16: 430 MB);
- Load CLIP (cogvideox): a fixed 24-layer T5-XXL (4.76 B parameters) whatever the file holds,
  so no tiny text encoder exists for it; the kit's text comes from our tiny T5 instead.
The DiT's text and face widths match the tiny kit's T5 (32) and SigLIP (32, 16 tokens).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from echovideo_core.atomic import atomic_path
from echovideo_core.native_layout import to_native_layout
from echovideo_core.tiny import TINY_TRANSFORMER

NATIVE_TRANSFORMER = {**TINY_TRANSFORMER, "num_attention_heads": 2, "attention_head_dim": 64,
                      "in_channels": 32, "out_channels": 16}
DIT_FILE = "echovideo_tiny_native.safetensors"
VAE_FILE = "cogvideox_vae_random_bf16.safetensors"


@dataclass(frozen=True)
class NativeKit:
    """transformer: core-layout DiT file (diffusion_models/); vae: full-size CogVideoX VAE file (vae/)."""

    transformer: Path
    vae: Path


def _seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def write_native_kit(models_dir: str | Path, seed: int = 0) -> NativeKit:
    """Write the two files into `models_dir`/diffusion_models and /vae (skipped when present)."""
    from diffusers import AutoencoderKLCogVideoX
    from safetensors.torch import save_file

    from echovideo_core.loading import CONFIG_METADATA_KEY
    from echovideo_core.transformer import EchoVideoTransformer3DModel

    root = Path(models_dir)
    kit = NativeKit(transformer=root / "diffusion_models" / DIT_FILE, vae=root / "vae" / VAE_FILE)
    if not kit.transformer.is_file():
        model = _seeded(seed, lambda: EchoVideoTransformer3DModel(**NATIVE_TRANSFORMER))
        state = {k: v.detach().contiguous() for k, v in to_native_layout(model.state_dict()).items()}
        config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
        kit.transformer.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(kit.transformer) as tmp:
            save_file(state, str(tmp), metadata={CONFIG_METADATA_KEY: json.dumps(config)})
    if not kit.vae.is_file():
        vae = _seeded(seed + 1, lambda: AutoencoderKLCogVideoX(latent_channels=16, scaling_factor=0.7))
        state = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in vae.state_dict().items()}
        del vae
        kit.vae.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(kit.vae) as tmp:
            save_file(state, str(tmp))
    return kit
