"""The released 5.6B DiT with seeded random weights, built directly in a storage format.

`RandomWeights` is a TensorSource: each `read` draws one tensor (seeded by the key, so any
order gives the same values) rounded to bf16, the released checkpoint's dtype. Through the
same layer-by-layer loader as a real file, `random_transformer(weights="fp8")` holds the
model only in fp8 (plus one layer in flight), never a bf16 copy: the bench's `--config full`
and the memory checks use it. `write_random_transformer` writes the same weights as a
released `transformer/` folder (config.json + index + shards), one tensor at a time, for
convert tests and measurements on real files. Outputs are noise, the cost is real.

Initialisation: weights N(0, 1/fan_in) (activations keep their scale through 42 blocks),
norm weights 1 + N(0, 0.02^2), biases and other 1-D tensors N(0, 0.02^2).
"""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any, Mapping

import torch

from echovideo_core.atomic import atomic_path, write_json_atomic
from echovideo_core.loading import CONFIG_METADATA_KEY, INDEX_NAME, build_on_meta
from echovideo_core.transformer import EchoVideoTransformer3DModel
from echovideo_core.weights.safetensors_stream import TensorSlot, write_safetensors_streaming
from echovideo_core.weights.stored import StoredTensor
from echovideo_core.weights.transformer import RELEASE_TRANSFORMER_CONFIG, transformer_from_source

FULL_TRANSFORMER: dict[str, Any] = dict(RELEASE_TRANSFORMER_CONFIG)
"""The released layout (tests/data/echovideo_transformer_keys.json lists its 1081 tensors)."""
MEDIUM_TRANSFORMER: dict[str, Any] = dict(
    num_attention_heads=48, attention_head_dim=64, num_layers=4, in_channels=32, out_channels=16,
    text_embed_dim=4096, time_embed_dim=512, face_embed_dim=32, face_seq_length=16, resampler_dim=32,
    resampler_depth=1, resampler_heads=2, resampler_dim_head=16, resampler_num_queries=4, resampler_ff_mult=2,
)
"""The CPU "medium" configuration: the release's block geometry (48 x 64 heads, 3072 wide,
512-wide time embedding, 4096-wide text) with 4 blocks instead of 42 and a shrunk IITF
resampler. Same values as the speed bench's medium configuration."""
SHARD_BYTES = 5 * 1024**3


class RandomWeights:
    """Seeded random tensors in the layout of `config`, stored as `dtype` (bf16 by default)."""

    def __init__(self, config: Mapping[str, Any] = FULL_TRANSFORMER, seed: int = 0, dtype: torch.dtype = torch.bfloat16) -> None:
        model = build_on_meta(dict(config))
        self.config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
        self._shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        self.seed, self.dtype = seed, dtype
        self.description = f"random weights (seed {seed})"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return dict(self._shapes)

    def read(self, key: str) -> StoredTensor:
        """Drawn in float32 a row block at a time (the working copy stays small), kept as `dtype`."""
        shape = self._shapes[key]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(key.encode()))
        if len(shape) >= 2:
            scale, shift = 1 / math.sqrt(math.prod(shape[1:])), 0.0
        else:
            scale, shift = 0.02, (1.0 if "norm" in key and key.endswith(".weight") else 0.0)
        out = torch.empty(shape, dtype=self.dtype)
        rows = out.reshape(shape[0], -1) if shape else out.reshape(1, 1)
        step = max(1, (1 << 22) // max(1, rows.shape[1]))
        for start in range(0, rows.shape[0], step):
            block = torch.randn(rows[start:start + step].shape, generator=generator)
            rows[start:start + step] = block.mul_(scale).add_(shift)
        return StoredTensor(shape, out)


def random_transformer(weights: str = "bf16", *, config: Mapping[str, Any] = FULL_TRANSFORMER, seed: int = 0,
                       compute_dtype: torch.dtype | None = None, device: torch.device | str = "cpu"
                       ) -> EchoVideoTransformer3DModel:
    """The DiT of `config` (default: the released 5.6B) with random weights, built in `weights`."""
    return transformer_from_source(RandomWeights(config, seed), weights, compute_dtype=compute_dtype, device=device)


def write_random_transformer(path: str | Path, *, config: Mapping[str, Any] = FULL_TRANSFORMER, seed: int = 0,
                             shard_bytes: int = SHARD_BYTES) -> Path:
    """Write the random weights in bf16, streaming one tensor at a time: as a released
    `transformer/` folder (shards of at most `shard_bytes`, index, config.json), or, when
    `path` ends in .safetensors, as our single file (config in its metadata). Returns `path`."""
    source = RandomWeights(config, seed)
    path = Path(path)
    slots = [TensorSlot(key, source.dtype, shape) for key, shape in source.shapes().items()]
    produce = lambda key: source.read(key).data  # noqa: E731
    if path.suffix == ".safetensors":
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write_safetensors_streaming(tmp, slots, produce, {CONFIG_METADATA_KEY: json.dumps(source.config)})
        return path
    path.mkdir(parents=True, exist_ok=True)
    shards: list[list[TensorSlot]] = [[]]
    for slot in slots:
        if shards[-1] and sum(s.nbytes for s in shards[-1]) + slot.nbytes > shard_bytes:
            shards.append([])
        shards[-1].append(slot)
    weight_map = {}
    for number, shard in enumerate(shards, start=1):
        name = f"diffusion_pytorch_model-{number:05d}-of-{len(shards):05d}.safetensors"
        with atomic_path(path / name) as tmp:
            write_safetensors_streaming(tmp, shard, produce)
        weight_map.update({slot.key: name for slot in shard})
    index = {"metadata": {"total_size": sum(slot.nbytes for slot in slots)}, "weight_map": weight_map}
    write_json_atomic(path / INDEX_NAME, index)
    write_json_atomic(path / "config.json", {"_class_name": "EchoVideoTransformer3DModel", **source.config})
    return path
