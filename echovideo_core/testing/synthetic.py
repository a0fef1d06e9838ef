"""Seeded stand-ins for a run's inputs, to measure a transformer alone (benchmarks, accuracy).

The noise, the face latent and the fused tokens are random but of the shapes a real run
feeds the DiT, so speed and the effect of a weight format or a speed option can be measured
without the encoders.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from echovideo_core.geometry import latent_frame_count
from echovideo_core.rotary import rotary_embeddings
from echovideo_core.sampling import GuidancePlan, SamplingInputs, denoise, make_scheduler
from echovideo_core.tiny import SCHEDULER_CONFIG


def synthetic_inputs(config: Mapping[str, Any], *, height: int, width: int, num_frames: int, steps: int,
                     guidance_scale: float = 6.0, cfg: bool = True, seed: int = 0,
                     device: torch.device | str | None = None) -> SamplingInputs:
    """Seeded noise, face latent and fused tokens ([uncond ; cond] with `cfg`) for a
    transformer config; rotary tables on `device`."""
    config = dict(config)
    generator = torch.Generator().manual_seed(seed)
    channels = int(config["in_channels"]) // 2
    shape = (1, latent_frame_count(num_frames), channels, height // 8, width // 8)
    tokens = torch.randn(2 if cfg else 1, int(config["max_text_seq_length"]), int(config["text_embed_dim"]),
                         generator=generator)
    rotary = None
    if config.get("use_rotary_positional_embeddings", True):
        rotary = rotary_embeddings(config, height=height, width=width, num_frames=num_frames, device=device)
    plan = GuidancePlan(conditioning=tokens, guidance=[guidance_scale] * steps, do_cfg=cfg)
    return SamplingInputs(noise=torch.randn(shape, generator=generator), face_latent=torch.randn(shape, generator=generator),
                          plan=plan, rotary=rotary)


def final_latents(model: torch.nn.Module, inputs: SamplingInputs, seed: int = 0) -> torch.Tensor:
    """The (1, F', C, h, w) float32 latents after every step of `inputs`."""
    scheduler = make_scheduler(SCHEDULER_CONFIG, len(inputs.plan.guidance))
    return denoise(model, scheduler, inputs, generator=torch.Generator().manual_seed(seed)).cpu()
