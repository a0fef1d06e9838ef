"""Weight formats for the DiT and T5: plain floats, fp8, int8, GGUF; loading and converting.

    formats.py            the names (`--weights`, `convert --to`) and what each stores
    kquants.py            GGUF Q8_0 / Q4_K / Q5_K blocks in torch (both directions)
    fp8.py, gguf_linear.py, int8.py   the layers that keep a weight low-bit
    stored.py             one stored tensor and the conversions between formats
    sources.py            weight files read one tensor at a time
    gguf_files.py         GGUF reading and streaming writing
    safetensors_stream.py streaming safetensors writing
    layered.py            fill a meta-device model layer by layer; which layers go low-bit
    transformer.py, t5.py the two models' loaders
    convert.py            `echovideo convert`
    accuracy.py           how far an approximate format moves the latents
    memory.py             peak resident memory of this process
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from echovideo_core.lazy_exports import lazy_getattr

# Lazy: the plain-float path (formats.py's names) must not need the optional `gguf` package.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("CONVERT_TARGETS", "T5_WEIGHTS", "TRANSFORMER_WEIGHTS", "WeightsFormat", "weights_format"),
                    "echovideo_core.weights.formats"),
    **dict.fromkeys(("load_transformer_in_format", "open_transformer_source", "transformer_from_source"),
                    "echovideo_core.weights.transformer"),
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from echovideo_core.weights.formats import (CONVERT_TARGETS, T5_WEIGHTS, TRANSFORMER_WEIGHTS, WeightsFormat,
                                                weights_format)
    from echovideo_core.weights.transformer import (load_transformer_in_format, open_transformer_source,
                                                    transformer_from_source)

__getattr__ = lazy_getattr(globals(), _EXPORTS)
