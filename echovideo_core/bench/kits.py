"""The pipelines `echovideo bench` measures: a released folder, or random weights built in code.

`--config tiny|medium|full`: the DiT of that size with seeded random weights, built directly
in its storage format (`testing.full_size`: never a full-precision copy first), and small
random encoders whose output widths fit it (a 1-layer T5 as wide as the DiT's text input, a
1-layer SigLIP giving the DiT's face tokens, a small CogVideoX VAE with the DiT's latent
channels). The encoders are a few MB: the measured memory and time are the DiT's and the
sampler's. Outputs are noise; the costs are real.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLCogVideoX
from transformers import SiglipVisionConfig, SiglipVisionModel, T5Config, T5EncoderModel

from echovideo_core.errors import InvalidInputError
from echovideo_core.loading.components import load_scheduler
from echovideo_core.loading.siglip import SiglipEncoder, SiglipProcessor
from echovideo_core.loading.text_encoder import load_tokenizer
from echovideo_core.pipeline import EchoVideoPipeline
from echovideo_core.testing.full_size import FULL_TRANSFORMER, MEDIUM_TRANSFORMER, random_transformer
from echovideo_core.tiny import SIGLIP_PROCESSOR, SPIECE_ASSET, TINY_SIGLIP, TINY_T5, TINY_TRANSFORMER, TINY_VAE

# The bench's tiny DiT has two blocks where the shipped tiny model has one: the block caches
# (fbc, magcache) keep the first block and cache the rest, so one block would leave them nothing.
CONFIGS: dict[str, dict[str, Any]] = {"tiny": {**TINY_TRANSFORMER, "num_layers": 2}, "medium": MEDIUM_TRANSFORMER,
                                      "full": FULL_TRANSFORMER}


def _seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval().requires_grad_(False)


def _encoders(config: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """T5, SigLIP (+ processor), VAE and tokenizer whose widths fit the DiT of `config`."""
    from echovideo_core.loading.transformer import build_on_meta

    dit = build_on_meta(config).config
    text_width, face_width, face_tokens = int(dit.text_embed_dim), int(dit.face_embed_dim), int(dit.face_seq_length)
    patches = int(round(face_tokens**0.5))
    if patches * patches != face_tokens:
        raise InvalidInputError(f"face_seq_length {face_tokens} is not a square number of SigLIP patches")
    heads = max(1, text_width // 64)
    t5 = T5Config(**{**TINY_T5, "d_model": text_width, "d_kv": text_width // heads, "num_heads": heads})
    t5._attn_implementation = "eager"
    image = 4 * patches
    siglip = SiglipVisionConfig(**{**TINY_SIGLIP, "hidden_size": face_width, "image_size": image, "patch_size": 4,
                                   "num_attention_heads": max(1, face_width // 32)})
    processor = {k: v for k, v in SIGLIP_PROCESSOR.items() if k != "image_processor_type"}
    return dict(
        text_encoder=_seeded(2, lambda: T5EncoderModel(t5)).to(dtype),
        siglip=SiglipEncoder(processor=SiglipProcessor(**{**processor, "size": {"height": image, "width": image}}),
                             model=_seeded(3, lambda: SiglipVisionModel(siglip)).to(dtype)),
        vae=_seeded(1, lambda: AutoencoderKLCogVideoX(**{**TINY_VAE, "latent_channels": int(dit.in_channels) // 2})),
        tokenizer=load_tokenizer(_tokenizer_dir()),
    )


@lru_cache(maxsize=1)
def _tokenizer_dir() -> Path:
    """A folder holding the tiny sentencepiece model under the name the tokenizer loader wants."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="echovideo-bench-tokenizer-"))
    shutil.copyfile(SPIECE_ASSET, folder / "spiece.model")
    return folder


def random_pipeline(config: str, *, dtype: torch.dtype, weights: str | None = None,
                    transformer_file: str | Path | None = None) -> EchoVideoPipeline:
    """The pipeline of `config` ("tiny", "medium", "full") on the CPU, DiT in `weights` (None:
    `dtype`), or the DiT of `transformer_file` (e.g. a .gguf written by `echovideo convert`)."""
    if config not in CONFIGS:
        raise InvalidInputError(f"--config must be one of {', '.join(CONFIGS)}; got {config!r}")
    from echovideo_core.dtypes import dtype_name

    if transformer_file is not None:
        from echovideo_core.loading.components import load_dit

        transformer = load_dit(transformer_file, dtype=dtype, weights=weights)
    else:
        name = weights or dtype_name(dtype)
        transformer = random_transformer(name, config=CONFIGS[config], compute_dtype=dtype)
    return EchoVideoPipeline(transformer=transformer, scheduler=load_scheduler(None), **_encoders(CONFIGS[config], dtype))
