"""EchoVideo for Python: identity-preserving human video generation (arXiv 2501.13452).

The stage functions (`echovideo_core.stages`) are the API that the pipeline, the CLI and the
ComfyUI nodes share; `EchoVideoPipeline` runs them in order. The public names are imported
lazily so that `import echovideo_core` stays cheap and a missing optional dependency only
affects the part that needs it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from echovideo_core.lazy_exports import lazy_getattr

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "EchoVideoTransformer3DModel": "echovideo_core.transformer",
    "ARCFACE_ROWS": "echovideo_core.transformer",
    "rotary_embeddings": "echovideo_core.rotary",
    "load_transformer": "echovideo_core.loading",
    "CheckpointMismatchError": "echovideo_core.loading",
    "EchoVideoPipeline": "echovideo_core.pipeline",
    "EchoVideoPipelineOutput": "echovideo_core.pipeline",
    "apply_lora": "echovideo_core.lora",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from echovideo_core.errors import CheckpointMismatchError, EchoVideoError, InvalidInputError, MissingModelFilesError
    from echovideo_core.loading import load_transformer
    from echovideo_core.lora import apply_lora
    from echovideo_core.numerics import Numerics
    from echovideo_core.pipeline import EchoVideoPipeline, EchoVideoPipelineOutput
    from echovideo_core.rotary import rotary_embeddings
    from echovideo_core.sampling import SamplingSettings
    from echovideo_core.transformer import ARCFACE_ROWS, EchoVideoTransformer3DModel


__getattr__ = lazy_getattr(globals(), _EXPORTS)
