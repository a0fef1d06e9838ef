"""How far an approximate weights format moves the result: latent difference and PSNR.

`format_errors` runs the same denoising (seeded noise, face latent and fused tokens, a few
steps with CFG) with the reference weights and with each format built from the same
source, and compares the final latents: largest absolute difference and PSNR. The
reference holds the source's values exactly (the released bf16 weights, or the bf16-rounded
random ones) and computes in the same dtype as the candidates, so the difference is the
format's alone. The CPU checks compute in float32 (bf16 matmuls are slow on CPUs without
bf16 units); the bench computes in bf16 on a GPU. Measured bounds: docs/weights.md.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch

from echovideo_core.testing.synthetic import final_latents, synthetic_inputs
from echovideo_core.weights.sources import TensorSource
from echovideo_core.weights.transformer import transformer_from_source


@dataclass(frozen=True)
class LatentError:
    """max_abs_latent_diff: largest |candidate - reference| over the final latents;
    psnr_db: 10 log10(range^2 / mean squared difference), range = the reference's max - min
    (inf when identical)."""

    weights: str
    max_abs_latent_diff: float
    psnr_db: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def psnr_db(reference: torch.Tensor, candidate: torch.Tensor, peak: float | None = None) -> float:
    """PSNR of `candidate` against `reference`; `peak` defaults to the reference's range
    (pass 1.0 for frames in [0, 1])."""
    reference, candidate = reference.double(), candidate.double()
    mse = float(((candidate - reference) ** 2).mean())
    span = float(reference.max() - reference.min()) if peak is None else peak
    return math.inf if mse == 0 else 10 * math.log10(span**2 / mse)


def latent_error(weights: str, reference: torch.Tensor, candidate: torch.Tensor) -> LatentError:
    return LatentError(weights, float((candidate.float() - reference.float()).abs().max()), psnr_db(reference, candidate))


def format_errors(source: TensorSource, weights: Sequence[str], *, height: int = 32, width: int = 32,
                  num_frames: int = 5, steps: int = 2, cfg: bool = True, compute_dtype: torch.dtype = torch.float32,
                  seed: int = 0) -> list[LatentError]:
    """One LatentError per format in `weights`, each against the reference run (one model
    in memory at a time)."""
    config = dict(source.config)
    inputs = synthetic_inputs(config, height=height, width=width, num_frames=num_frames, steps=steps, cfg=cfg, seed=seed)
    reference_weights = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[compute_dtype]
    reference = final_latents(transformer_from_source(source, reference_weights), inputs, seed)
    errors = []
    for name in weights:
        model = transformer_from_source(source, name, compute_dtype=compute_dtype)
        errors.append(latent_error(name, reference, final_latents(model, inputs, seed)))
        del model
    return errors
