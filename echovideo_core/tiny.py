"""A complete tiny random-weight EchoVideo model in the released folder layout.

For tests, demos without the 20 GB checkpoint, and debugging: every component has the
release's architecture at toy width, so the whole pipeline (loading included) runs in
seconds on a CPU. The weights are random (seeded, deterministic for a given torch
version): the output is noise, not a video of anyone.

Sizes: transformer 1 layer, 2 heads x 16, text width 32, face width 32, a 1-layer resampler
with 4 queries; T5 1 layer, d_model 32; SigLIP 1 layer, width 32 (= face_embed_dim),
16x16 images in 4x4 patches (16 tokens = face_seq_length); CogVideoX VAE with 8/8/16/16
channels and 4 latent channels (x8 space, x4 time like the real one; its sample size, which
sets where VAE tiling starts, is the real one's 480x720). The tokenizer is the
small sentencepiece model shipped in `echovideo_core/assets/` (185 pieces + 8 extra ids).
"""
from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from diffusers import AutoencoderKLCogVideoX
from transformers import SiglipVisionConfig, SiglipVisionModel, T5Config, T5EncoderModel

from echovideo_core.atomic import staged_files
from echovideo_core.errors import OutputExistsError
from echovideo_core.loading.scheduler import RELEASE_SCHEDULER_CONFIG
from echovideo_core.paths import check_output_folder
from echovideo_core.transformer import EchoVideoTransformer3DModel

SPIECE_ASSET = Path(__file__).parent / "assets" / "tiny_t5_spiece.model"
TINY_VOCAB = 193  # 185 sentencepiece pieces + 8 extra ids

TINY_TRANSFORMER: dict[str, Any] = dict(
    num_attention_heads=2, attention_head_dim=16, num_layers=1, in_channels=8, out_channels=4,
    text_embed_dim=32, time_embed_dim=16, face_embed_dim=32, face_seq_length=16,
    max_text_seq_length=226, patch_size=2, sample_height=8, sample_width=8, sample_frames=9,
    use_rotary_positional_embeddings=True, resampler_dim=32, resampler_depth=1, resampler_heads=2,
    resampler_dim_head=16, resampler_num_queries=4, resampler_ff_mult=2, arcface_dim=512,
)
TINY_T5: dict[str, Any] = dict(
    vocab_size=TINY_VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=2,
    feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
    relative_attention_max_distance=128, dropout_rate=0.0, is_encoder_decoder=False,
    use_cache=False, tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
)
TINY_SIGLIP: dict[str, Any] = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
    image_size=16, patch_size=4, vision_use_head=False,
)
TINY_VAE: dict[str, Any] = dict(
    block_out_channels=(8, 8, 16, 16), latent_channels=4, layers_per_block=1, norm_num_groups=4,
    temporal_compression_ratio=4, sample_height=480, sample_width=720, scaling_factor=0.7,
    use_quant_conv=False, use_post_quant_conv=False,
)
SCHEDULER_CONFIG: dict[str, Any] = {"_class_name": "CogVideoXDPMScheduler", **RELEASE_SCHEDULER_CONFIG}
SIGLIP_PROCESSOR: dict[str, Any] = {
    "image_processor_type": "SiglipImageProcessor", "do_resize": True, "resample": 3,
    "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "size": {"height": 16, "width": 16},
}
TOKENIZER_CONFIG: dict[str, Any] = {
    "tokenizer_class": "T5Tokenizer", "extra_ids": 8, "eos_token": "</s>", "unk_token": "<unk>",
    "pad_token": "<pad>", "model_max_length": 226, "legacy": True,
}
TINY_KIT_VERSION = 1
"""Bumped whenever the tiny model changes, so cached copies are rewritten (see is_current_tiny_model)."""

MODEL_INDEX: dict[str, Any] = {
    "_class_name": "EchoVideoPipeline", "_tiny_kit_version": TINY_KIT_VERSION,
    "_note": "tiny random-weight model written by echovideo_core.tiny (outputs are noise)",
    "scheduler": ["diffusers", "CogVideoXDPMScheduler"], "text_encoder": ["transformers", "T5EncoderModel"],
    "tokenizer": ["transformers", "T5Tokenizer"], "transformer": ["echovideo_core", "EchoVideoTransformer3DModel"],
    "vae": ["diffusers", "AutoencoderKLCogVideoX"],
}


def _seeded(seed: int, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Build a module with a fixed seed without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _drop_foreign_config_keys(config_path: Path) -> None:
    """Keep only the keys our transformer's constructor takes (diffusers also saves the
    parent CogVideoX class's newer arguments, which the release's config does not have)."""
    accepted = set(inspect.signature(EchoVideoTransformer3DModel.__init__).parameters)
    config = json.loads(config_path.read_text())
    kept = {k: v for k, v in config.items() if k.startswith("_") or k in accepted}
    config_path.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")


TINY_MODEL_BYTES = 4 * 2**20
"""Room the tiny model needs (its files take about 1.6 MB), checked before writing."""


def is_current_tiny_model(folder: str | Path) -> bool:
    """True when `folder` holds a tiny model written by this version of the kit."""
    index = Path(folder) / "model_index.json"
    try:
        return json.loads(index.read_text()).get("_tiny_kit_version") == TINY_KIT_VERSION
    except (OSError, ValueError):
        return False


def check_tiny_model_target(folder: str | Path, *, overwrite: bool = False, argument: str | None = None) -> Path:
    """`folder` may receive the tiny model: new or empty, or (with `overwrite`) not a real
    model: a folder whose model_index.json was not written by the tiny writer is refused
    even with `overwrite`, so a mistyped path never damages a released model."""
    root = Path(folder)
    check_output_folder(root, argument, must_be_empty=True, overwrite=overwrite, expected_bytes=TINY_MODEL_BYTES)
    index = root / "model_index.json"
    if index.is_file():
        try:
            written_by_us = "_tiny_kit_version" in json.loads(index.read_text())
        except (OSError, ValueError):
            written_by_us = False
        if not written_by_us:
            raise OutputExistsError(f"{argument + ' ' if argument else ''}{root} holds a model that the tiny writer did "
                                    "not write (its model_index.json); it is never replaced: choose another folder",
                                    path=root)
    return root


def write_tiny_model(folder: str | Path, seed: int = 0, *, overwrite: bool = False) -> Path:
    """Write the tiny model into `folder` (created). Same seed -> identical weights.

    Layout: transformer/, vae/, text_encoder/, tokenizer/, scheduler/, clip_visual_encoder/,
    model_index.json (as the release's folder, no face_encoder/). A non-empty folder is
    refused unless `overwrite`; even then only the tiny model's own files are replaced (each
    by an atomic rename), every other file stays, and a real model is never replaced
    (`check_tiny_model_target`).
    """
    root = check_tiny_model_target(folder, overwrite=overwrite)
    with staged_files(root, overwrite=overwrite) as stage:
        write_tiny_components(stage, seed)
    return root


def write_tiny_components(root: Path, seed: int) -> None:
    """Every file of the tiny model, written into `root` (a new folder: the writers below replace
    files as they please, so callers pass a staging folder; see `write_tiny_model`), without
    transformers' progress bars (a few kilobytes need none)."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        _write_components(root, seed)
    finally:
        if shown:
            transformers_logging.enable_progress_bar()


def _write_components(root: Path, seed: int) -> None:
    transformer = _seeded(seed, lambda: EchoVideoTransformer3DModel(**TINY_TRANSFORMER))
    transformer.save_pretrained(str(root / "transformer"), safe_serialization=True)
    _drop_foreign_config_keys(root / "transformer" / "config.json")
    vae = _seeded(seed + 1, lambda: AutoencoderKLCogVideoX(**TINY_VAE))
    vae.save_pretrained(str(root / "vae"), safe_serialization=True)
    t5 = _seeded(seed + 2, lambda: T5EncoderModel(T5Config(**TINY_T5)))
    t5.save_pretrained(str(root / "text_encoder"), safe_serialization=True)
    siglip = _seeded(seed + 3, lambda: SiglipVisionModel(SiglipVisionConfig(**TINY_SIGLIP)))
    siglip.save_pretrained(str(root / "clip_visual_encoder"), safe_serialization=True)
    _write_json(root / "clip_visual_encoder" / "preprocessor_config.json", SIGLIP_PROCESSOR)
    (root / "tokenizer").mkdir(exist_ok=True)
    shutil.copyfile(SPIECE_ASSET, root / "tokenizer" / "spiece.model")
    _write_json(root / "tokenizer" / "tokenizer_config.json", TOKENIZER_CONFIG)
    _write_json(root / "scheduler" / "scheduler_config.json", SCHEDULER_CONFIG)
    _write_json(root / "model_index.json", MODEL_INDEX)
