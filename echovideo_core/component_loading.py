"""Single-file text encoder and VAE checkpoints, as users keep them for other models.

ComfyUI users already have `t5xxl_fp16.safetensors` (or an fp8 variant) in
`models/text_encoders/` and a CogVideoX VAE file in `models/vae/`: EchoVideo uses the same
T5 v1.1 XXL encoder and the same CogVideoX VAE, so these files are loaded directly instead
of asking for a second copy. Folders in the released diffusers layout load too.

The architecture is read from the tensor shapes (T5: width, depth, heads, vocabulary; VAE:
channels per level, blocks per level, latent channels). What shapes cannot tell comes from
the release's fixed values, or from our own exports' metadata (`echovideo_config`), which
is how the tiny test models keep their toy settings. Models are built on the meta device
and the tensors assigned in, so a 4.7 B-parameter T5 is never allocated twice.
Only safetensors or `torch.load(weights_only=True)` are read.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import torch
from diffusers import AutoencoderKLCogVideoX
from safetensors import safe_open
from transformers import T5Config, T5EncoderModel

from echovideo_core.errors import MissingModelFilesError, require_files
from echovideo_core.loading import CheckpointMismatchError, compare_keys, strip_common_prefix

logger = logging.getLogger(__name__)

CONFIG_METADATA_KEY = "echovideo_config"
PRECISIONS: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
T5_PREFIXES = ("text_encoders.t5xxl.transformer.", "t5xxl.transformer.", "transformer.", "text_encoder.")
VAE_PREFIXES = ("first_stage_model.", "vae.")
# T5 v1.1 settings that the tensor shapes do not show (the release's encoder).
T5_FIXED: dict[str, Any] = dict(
    feed_forward_proj="gated-gelu", relative_attention_max_distance=128, dropout_rate=0.0,
    is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False, pad_token_id=0,
    eos_token_id=1, layer_norm_epsilon=1e-6,
)
# CogVideoX VAE settings that the shapes do not show; EchoVideo (like CogVideoX-5B) scales
# latents by 0.7 (CogVideoX-2B files carry the same weights but were used with 1.1526).
VAE_FIXED: dict[str, Any] = dict(norm_num_groups=32, temporal_compression_ratio=4, scaling_factor=0.7)


def precision_dtype(name: str) -> torch.dtype:
    """"bf16" | "fp16" | "fp32" -> the torch dtype (ValueError naming the choices)."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {name!r}")
    return PRECISIONS[name]


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (on the CPU, stored dtype) and metadata of a .safetensors or weights-only file."""
    path = Path(path)
    if not path.is_file():
        raise MissingModelFilesError(f"model file not found: {path}")
    if path.suffix in {".safetensors", ".sft"}:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                return {k: handle.get_tensor(k) for k in handle.keys()}, dict(handle.metadata() or {})
        except Exception as err:  # safetensors raises several types for a damaged header
            raise CheckpointMismatchError(f"{path} is not a readable safetensors file ({err})") from err
    state = torch.load(path, map_location="cpu", weights_only=True)
    return dict(state.get("state_dict", state)), {}


def dequantize_scaled_fp8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's "scaled fp8" files store `w_fp8` and `w.scale_weight`: weight = w * scale.

    Plain fp8 files (no scales) pass through; the cast to the run's dtype happens later.
    """
    scales = {k[: -len("scale_weight")] + "weight": v for k, v in state.items() if k.endswith(".scale_weight")}
    out = {}
    for key, value in state.items():
        if key == "scaled_fp8" or key.endswith((".scale_weight", ".scale_input")):
            continue
        out[key] = value.float() * scales[key].float() if key in scales else value
    return out


def _assign_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Path, what: str,
                   dtype: torch.dtype) -> None:
    """Strict key/shape check naming the keys, then assign the tensors cast to `dtype`."""
    report = compare_keys({k: tuple(v.shape) for k, v in model.state_dict().items()}, state)
    if not report.ok:
        raise CheckpointMismatchError(f"{source} does not fit {what}: {report.describe()}")
    cast = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(cast, strict=True, assign=True)


def t5_config_from_state_dict(state: Mapping[str, torch.Tensor]) -> T5Config:
    """T5 encoder config from the tensor shapes (T5 v1.1 XXL: 4096 wide, 24 blocks, 64 heads)."""
    try:
        vocab, width = state["shared.weight"].shape
        bias = state["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        inner = state["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
        d_ff = state["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0]
    except KeyError as err:
        raise CheckpointMismatchError(f"not a T5 v1.1 encoder checkpoint: no tensor {err.args[0]}") from err
    buckets, heads = bias.shape
    layers = {int(k.split(".")[2]) for k in state if k.startswith("encoder.block.")}
    return T5Config(vocab_size=vocab, d_model=width, d_kv=inner // heads, d_ff=d_ff, num_layers=len(layers),
                    num_heads=heads, relative_attention_num_buckets=buckets, **T5_FIXED)


def load_t5_encoder_file(path: str | Path, torch_dtype: torch.dtype = torch.float32) -> T5EncoderModel:
    """A T5 encoder from one weight file (ComfyUI's `t5xxl_fp16.safetensors`, fp8 variants)."""
    path = Path(path)
    state, metadata = read_state_dict(path)
    state = dequantize_scaled_fp8(strip_common_prefix(state, T5_PREFIXES))
    if "shared.weight" not in state and "encoder.embed_tokens.weight" in state:
        state["shared.weight"] = state["encoder.embed_tokens.weight"]
    state = {k: v for k, v in state.items() if not k.startswith("decoder.") and k != "lm_head.weight"}
    state["encoder.embed_tokens.weight"] = state.get("shared.weight", torch.empty(0))
    if CONFIG_METADATA_KEY in metadata:
        config = T5Config(**json.loads(metadata[CONFIG_METADATA_KEY]))
    else:
        config = t5_config_from_state_dict(state)
    with torch.device("meta"):
        model = T5EncoderModel(config)
    _assign_strict(model, state, path, "a T5 encoder", torch_dtype)
    logger.info("loaded T5 encoder from %s (%d layers, width %d, %s)", path, config.num_layers, config.d_model, torch_dtype)
    return model.eval().requires_grad_(False)


def vae_config_from_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """CogVideoX VAE constructor arguments from the tensor shapes (+ VAE_FIXED)."""
    try:
        latent_twice = state["encoder.conv_out.conv.weight"].shape[0]
    except KeyError as err:
        raise CheckpointMismatchError("not a CogVideoX VAE checkpoint: no tensor encoder.conv_out.conv.weight") from err
    levels = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.down_blocks.")})
    channels = [state[f"encoder.down_blocks.{i}.resnets.0.conv2.conv.weight"].shape[0] for i in levels]
    resnets = {int(k.split(".")[4]) for k in state if k.startswith("encoder.down_blocks.0.resnets.")}
    return dict(
        block_out_channels=tuple(channels), latent_channels=latent_twice // 2, layers_per_block=len(resnets),
        use_quant_conv="quant_conv.weight" in state, use_post_quant_conv="post_quant_conv.weight" in state,
        down_block_types=("CogVideoXDownBlock3D",) * len(channels), up_block_types=("CogVideoXUpBlock3D",) * len(channels),
        **VAE_FIXED,
    )


def load_vae(path: str | Path, torch_dtype: torch.dtype = torch.float32) -> AutoencoderKLCogVideoX:
    """CogVideoX VAE from a diffusers folder (`vae/`, or a released root holding one) or a file."""
    path = Path(path)
    if path.is_dir():
        folder = path / "vae" if (path / "vae" / "config.json").is_file() else path
        require_files(folder, ["config.json"], what="CogVideoX VAE")
        vae = AutoencoderKLCogVideoX.from_pretrained(str(folder), torch_dtype=torch_dtype, local_files_only=True)
        return vae.eval().requires_grad_(False)
    state, metadata = read_state_dict(path)
    state = strip_common_prefix(state, VAE_PREFIXES)
    if CONFIG_METADATA_KEY in metadata:
        config = json.loads(metadata[CONFIG_METADATA_KEY])
    else:
        config = vae_config_from_state_dict(state)
    with torch.device("meta"):
        vae = AutoencoderKLCogVideoX(**config)
    _assign_strict(vae, state, path, "AutoencoderKLCogVideoX", torch_dtype)
    logger.info("loaded CogVideoX VAE from %s (%s)", path, torch_dtype)
    return vae.eval().requires_grad_(False)


def save_with_config(module: torch.nn.Module, config: Mapping[str, Any], path: str | Path) -> Path:
    """One .safetensors file with `config` in its metadata (how the tiny kit writes its files)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous().cpu() for k, v in module.state_dict().items()}
    clean = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items() if not k.startswith("_")}
    save_file(state, str(path), metadata={CONFIG_METADATA_KEY: json.dumps(clean)})
    return path
