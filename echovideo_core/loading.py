"""Loading EchoVideo transformer weights offline: released folder, single file, strict check.

The model is built on the meta device (22 GB in float32 at full size would otherwise be
allocated twice) and the checkpoint's tensors are assigned in, cast one by one to the
requested dtype. Only safetensors, or `torch.load(weights_only=True)` for `.bin`/`.pth`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open

from echovideo_core.atomic import atomic_path
from echovideo_core.transformer import EchoVideoTransformer3DModel

logger = logging.getLogger(__name__)

WEIGHT_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
CONFIG_METADATA_KEY = "echovideo_config"  # where our single-file exports keep the config
# Prefixes that other tools put in front of the transformer's keys in single files.
FOREIGN_PREFIXES = ("model.diffusion_model.", "transformer.", "diffusion_model.")


class CheckpointMismatchError(ValueError):
    """The checkpoint's keys or shapes do not fit the model; the message lists them by name."""


@dataclass(frozen=True)
class KeyReport:
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mis_shaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mis_shaped)

    def describe(self, limit: int = 20) -> str:
        def cut(items: list[str]) -> str:
            more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        parts = []
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {cut(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {cut(self.unexpected)}")
        if self.mis_shaped:
            shaped = [f"{k} (checkpoint {list(got)} vs model {list(want)})" for k, got, want in self.mis_shaped]
            parts.append(f"wrong shape {len(shaped)}: {cut(shaped)}")
        return "; ".join(parts)


def compare_keys(model_shapes: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, torch.Tensor]) -> KeyReport:
    missing = [k for k in model_shapes if k not in state_dict]
    unexpected = [k for k in state_dict if k not in model_shapes]
    mis_shaped = [
        (k, tuple(v.shape), tuple(model_shapes[k]))
        for k, v in state_dict.items()
        if k in model_shapes and tuple(v.shape) != tuple(model_shapes[k])
    ]
    return KeyReport(missing, unexpected, mis_shaped)


def common_prefix(keys: list[str], prefixes: tuple[str, ...] = FOREIGN_PREFIXES) -> str:
    """The first of `prefixes` that every key carries, or "" (other tools' single files)."""
    for prefix in prefixes:
        if keys and all(k.startswith(prefix) for k in keys):
            return prefix
    return ""


def strip_common_prefix(state_dict: dict[str, torch.Tensor], prefixes: tuple[str, ...] = FOREIGN_PREFIXES
                        ) -> dict[str, torch.Tensor]:
    """Drop the first of `prefixes` that every key carries (other tools' single files)."""
    prefix = common_prefix(list(state_dict), prefixes)
    return {k[len(prefix):]: v for k, v in state_dict.items()} if prefix else state_dict


def _read_safetensors(path: Path, dtype: torch.dtype | None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {}
            for key in f.keys():
                tensor = f.get_tensor(key)
                tensors[key] = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
    except Exception as err:  # safetensors raises several types for a damaged header
        raise CheckpointMismatchError(f"{path} is not a readable safetensors file ({err})") from err
    return tensors, metadata


def read_transformer_weights(path: str | Path, dtype: torch.dtype | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """State dict (and config, when the source has one) from a folder or a single file."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path, dtype)
    if not path.exists():
        raise FileNotFoundError(
            f"No EchoVideo transformer at {path}. Put the released `transformer/` folder there "
            f"(config.json + {INDEX_NAME} + shards) or a single .safetensors file."
        )
    if path.suffix == ".safetensors":
        tensors, metadata = _read_safetensors(path, dtype)
        config = json.loads(metadata[CONFIG_METADATA_KEY]) if CONFIG_METADATA_KEY in metadata else None
        return strip_common_prefix(tensors), config
    if path.suffix in {".bin", ".pt", ".pth", ".ckpt"}:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
        tensors = tensors.get("state_dict", tensors)
        if dtype is not None:
            tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
        return strip_common_prefix(dict(tensors)), None
    raise CheckpointMismatchError(f"{path}: unsupported weight file type {path.suffix!r} (use .safetensors)")


def _read_folder(folder: Path, dtype: torch.dtype | None) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    if (folder / "transformer").is_dir() and not (folder / "config.json").exists():
        folder = folder / "transformer"  # the whole released pipeline folder was given
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else None
    files = folder_weight_files(folder)
    if len(files) > 1 or (folder / INDEX_NAME).exists():
        tensors: dict[str, torch.Tensor] = {}
        for file in files:
            tensors.update(_read_safetensors(file, dtype)[0])
        return tensors, config
    tensors, metadata = _read_safetensors(files[0], dtype)
    if config is None and CONFIG_METADATA_KEY in metadata:
        config = json.loads(metadata[CONFIG_METADATA_KEY])
    return tensors, config


def folder_weight_files(folder: Path, index_name: str = INDEX_NAME, usual: str = WEIGHT_NAME) -> list[Path]:
    """The safetensors files of a model folder: the shards its index lists (all present),
    else `usual`, else its one .safetensors file (transformers folders: model.safetensors...)."""
    index = folder / index_name
    if index.exists():
        shard_names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [name for name in shard_names if not (folder / name).exists()]
        if missing:
            raise FileNotFoundError(f"{folder}: the index lists shards that are not there: {', '.join(missing)}")
        return [folder / name for name in shard_names]
    singles = [folder / usual] if (folder / usual).exists() else sorted(folder.glob("*.safetensors"))
    if len(singles) != 1:
        raise FileNotFoundError(
            f"{folder}: expected {usual} or {index_name} with its shards "
            f"(found {len(singles)} .safetensors files)"
        )
    return singles


def infer_config(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Rebuild the shape-bearing config arguments from the tensors of a single-file checkpoint."""
    try:
        proj = state_dict["patch_embed.proj.weight"]  # (inner, in_channels, p, p)
        head_dim = state_dict["transformer_blocks.0.attn1.norm_q.weight"].shape[0]
        resampler_inner = state_dict["face_prj_wofc.layers.0.0.to_q.weight"].shape[0]  # heads * dim_head
    except KeyError as err:
        raise CheckpointMismatchError(f"not an EchoVideo transformer checkpoint: no tensor {err.args[0]}") from err
    inner, in_channels, patch, _ = proj.shape
    layers = {int(k.split(".")[1]) for k in state_dict if k.startswith("transformer_blocks.")}
    resampler_layers = {int(k.split(".")[2]) for k in state_dict if k.startswith("face_prj_wofc.layers.")}
    # Head width is not visible in the shapes; the release's is 64 (our exports carry a config).
    resampler_dim_head = 64 if resampler_inner % 64 == 0 else resampler_inner
    latents = state_dict["face_prj_wofc.latents"]
    face_info = state_dict["face_info_proj.weight"]
    text_proj = state_dict["text_proj.weight"]
    return {
        "num_attention_heads": inner // head_dim,
        "attention_head_dim": head_dim,
        "in_channels": in_channels,
        "out_channels": state_dict["proj_out.weight"].shape[0] // (patch * patch),
        "patch_size": patch,
        "num_layers": len(layers),
        "text_embed_dim": state_dict["patch_embed.text_proj.weight"].shape[1],
        "time_embed_dim": state_dict["time_embedding.linear_1.weight"].shape[0],
        "face_embed_dim": state_dict["face_proj.weight"].shape[1],
        "face_seq_length": face_info.shape[0],
        "max_text_seq_length": text_proj.shape[0],
        "resampler_dim": latents.shape[-1],
        "resampler_num_queries": latents.shape[1],
        "resampler_depth": len(resampler_layers),
        "resampler_heads": resampler_inner // resampler_dim_head,
        "resampler_dim_head": resampler_dim_head,
        "resampler_ff_mult": state_dict["face_prj_wofc.layers.0.1.1.weight"].shape[0] // latents.shape[-1],
        "arcface_dim": state_dict["face_prj_wofc.proj_in.weight"].shape[1],
        "use_rotary_positional_embeddings": True,
    }


def build_on_meta(config: Mapping[str, Any]) -> EchoVideoTransformer3DModel:
    """The model with no storage allocated (any size, instantly)."""
    with torch.device("meta"):
        return EchoVideoTransformer3DModel.from_config(dict(config))


def load_transformer(
    path: str | Path,
    *,
    torch_dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    config: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
) -> EchoVideoTransformer3DModel:
    """Load a transformer from a released `transformer/` folder or a single weight file.

    `config` overrides the folder's `config.json` (a single file without one gets its config
    inferred from tensor shapes). `extra_tensors` are merged in before the strict check
    (the tiny reference folder stores its resampler as a recipe). Any missing, unexpected or
    mis-shaped key raises `CheckpointMismatchError` naming the keys.
    """
    state_dict, found_config = read_transformer_weights(path, dtype=torch_dtype)
    if extra_tensors:
        state_dict.update({k: v.to(torch_dtype) if v.is_floating_point() else v for k, v in extra_tensors.items()})
    config = dict(config or found_config or infer_config(state_dict))
    model = build_on_meta(config)
    report = compare_keys({k: tuple(v.shape) for k, v in model.state_dict().items()}, state_dict)
    if not report.ok:
        raise CheckpointMismatchError(f"{path} does not fit EchoVideoTransformer3DModel: {report.describe()}")
    model.load_state_dict(state_dict, strict=True, assign=True)
    if torch.device(device).type != "cpu":
        model = model.to(device=device)
    model.eval()
    logger.info("loaded EchoVideo transformer from %s (%s, %d tensors)", path, torch_dtype, len(state_dict))
    return model


def save_single_file(model: EchoVideoTransformer3DModel, path: str | Path) -> Path:
    """Write the weights as one .safetensors file with the config in its metadata (atomic)."""
    from safetensors.torch import save_file

    path = Path(path)
    state_dict = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    with atomic_path(path) as tmp:
        save_file(state_dict, str(tmp), metadata={CONFIG_METADATA_KEY: json.dumps(config)})
    return path
