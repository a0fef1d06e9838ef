"""`echovideo convert`: write the DiT as an fp8 safetensors file or a GGUF file, streaming.

Input: a released folder (or its `transformer/`), or one of our single files. Output:
- fp8 (.safetensors): ComfyUI's scaled-fp8 layout (fp8.py): `scaled_fp8` marker, each
  block linear weight in float8_e4m3fn followed by its `scale_weight`, everything else bf16,
  our config in the metadata (`echovideo_config`);
- gguf-q8_0 / gguf-q5_k / gguf-q4_k (.gguf): gguf_files.py's layout.
The IITF layers, norms, biases and the layers outside the blocks stay bf16 (layered.py's
rule, the same one loading uses). The source's keys are checked first: a file of another
model, or without the IITF layers, is refused naming the keys before anything is written.
One tensor is read, converted and written at a time; the output appears only when complete
(atomic), and an existing output is replaced only with `overwrite`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from gguf import GGMLQuantizationType

from echovideo_core.atomic import atomic_path
from echovideo_core.errors import InvalidInputError
from echovideo_core.loading import CONFIG_METADATA_KEY, build_on_meta
from echovideo_core.paths import check_output_file
from echovideo_core.weights.formats import CONVERT_TARGETS, GGUF_SUFFIX, WeightsFormat, weights_format
from echovideo_core.weights.fp8 import FP8_DTYPE, MARKER_KEY, SCALE_SUFFIXES
from echovideo_core.weights.gguf_files import PlannedTensor, gguf_float_type, write_gguf
from echovideo_core.weights.layered import check_keys, low_bit_weight_keys, transformer_low_bit
from echovideo_core.weights.safetensors_stream import TensorSlot, write_safetensors_streaming
from echovideo_core.weights.sources import TensorSource
from echovideo_core.weights.stored import gguf_type_for, store
from echovideo_core.weights.transformer import MODEL_NAME, open_transformer_source, transformer_config

logger = logging.getLogger(__name__)

WEIGHTS_METADATA_KEY = "echovideo_weights"
OnTensor = Callable[[int, int], None]
"""on_tensor(done, total): called after each tensor is written (the CLI's progress bar)."""


@dataclass(frozen=True)
class ConversionResult:
    """out: the written file; tensors: how many model tensors; low_bit: how many of them are
    stored low-bit; bytes: the file's size."""

    out: Path
    target: str
    tensors: int
    low_bit: int
    bytes: int


def check_output(target: str, out: Path, overwrite: bool) -> WeightsFormat:
    """The target's format, after the checks that need no model: name, suffix, existing file."""
    fmt = weights_format(target, valid=CONVERT_TARGETS, what="conversion target")
    wanted = GGUF_SUFFIX if fmt.gguf_type else ".safetensors"
    if out.suffix.lower() != wanted:
        raise InvalidInputError(f"--out {out}: a {target} file must end in {wanted}")
    check_output_file(out, "--out", overwrite=overwrite)
    return fmt


def convert_transformer(model_path: str | Path, target: str, out: str | Path, *, overwrite: bool = False,
                        on_tensor: OnTensor | None = None) -> ConversionResult:
    """Write the DiT at `model_path` to `out` in `target` (one of CONVERT_TARGETS)."""
    out = Path(out)
    fmt = check_output(target, out, overwrite)
    source = open_transformer_source(model_path)
    return convert_source(source, fmt, out, on_tensor=on_tensor)


def convert_source(source: TensorSource, fmt: WeightsFormat, out: Path, *, on_tensor: OnTensor | None = None
                   ) -> ConversionResult:
    """convert_transformer from an open TensorSource (e.g. the random full-size weights)."""
    config = transformer_config(source)
    model = build_on_meta(config)
    check_keys(model, source, MODEL_NAME)
    keys = list(model.state_dict())
    low_bit = low_bit_weight_keys(model, transformer_low_bit)
    with atomic_path(out) as tmp:
        if fmt.gguf_type:
            _write_gguf(tmp, source, keys, low_bit, fmt, config, on_tensor)
        else:
            _write_fp8(tmp, source, keys, low_bit, fmt, config, on_tensor)
    logger.info("wrote %s (%s) from %s", out, fmt.name, source.description)
    return ConversionResult(out, fmt.name, len(keys), len(low_bit), out.stat().st_size)


def _write_fp8(path: Path, source: TensorSource, keys: list[str], low_bit: set[str], fmt: WeightsFormat,
               config: dict, on_tensor: OnTensor | None) -> None:
    shapes = source.shapes()
    scale_suffix = SCALE_SUFFIXES[0]
    slots = [TensorSlot(MARKER_KEY, FP8_DTYPE, (0,))]
    for key in keys:
        if key in low_bit:
            slots += [TensorSlot(key, FP8_DTYPE, shapes[key]), TensorSlot(key[: -len(".weight")] + scale_suffix, torch.float32, ())]
        else:
            slots.append(TensorSlot(key, fmt.dtype, shapes[key]))
    pending_scale: dict[str, torch.Tensor] = {}
    done = 0

    def produce(key: str) -> torch.Tensor:
        nonlocal done
        if key == MARKER_KEY:
            return torch.empty(0, dtype=FP8_DTYPE)
        if key in pending_scale:
            return pending_scale.pop(key)
        stored = source.read(key)
        done += 1
        if on_tensor is not None:
            on_tensor(done, len(keys))
        if key not in low_bit:
            return stored.dequantize(fmt.dtype)
        fp8 = store(stored, fmt)
        pending_scale[key[: -len(".weight")] + scale_suffix] = fp8.scale
        return fp8.data

    metadata = {CONFIG_METADATA_KEY: json.dumps(config), WEIGHTS_METADATA_KEY: fmt.name}
    write_safetensors_streaming(path, slots, produce, metadata)


def _write_gguf(path: Path, source: TensorSource, keys: list[str], low_bit: set[str], fmt: WeightsFormat,
                config: dict, on_tensor: OnTensor | None) -> None:
    shapes = source.shapes()
    wanted = GGMLQuantizationType[fmt.gguf_type]
    kept = gguf_float_type(fmt.dtype)
    plans = [PlannedTensor(key, shapes[key], (gguf_type_for(shapes[key], wanted) or kept) if key in low_bit else kept)
             for key in keys]

    def produce(key: str):
        stored = source.read(key)
        return store(stored, fmt) if key in low_bit else stored

    write_gguf(path, plans, produce, config=config, weights=fmt.name, on_tensor=on_tensor)
