"""One timed generation, stage by stage, with its peak memory and block evaluations.

The stages are the library's (stages.py), run one at a time so each gets its own clock:
text (T5), face (SigLIP + ArcFace features of a seeded stand-in face), fuse (IITF), denoise
(noise, face latent, every step: `step_seconds`), decode. Peak memory: CUDA's peak
allocated bytes on a GPU, else the process's peak resident set (Linux VmHWM, reset before
the run, so a baseline measured first does not count).

The baseline fuses at every step, as the release does (`release_fusion_call`); a run fuses
once and passes the tokens (the same numbers).
"""
from __future__ import annotations

import gc
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from echovideo_core import stages
from echovideo_core.acceleration.apply import accelerated
from echovideo_core.acceleration.cache import record_mag_ratios as record_ratios
from echovideo_core.acceleration.options import SpeedOptions
from echovideo_core.guidance import uses_guidance
from echovideo_core.pipeline import EchoVideoPipeline
from echovideo_core.sampling import DenoisingModel, ModelCall, ModelInputs, SamplingSettings
from echovideo_core.weights.memory import peak_rss_bytes, reset_peak_rss, trim_heap

PROMPT = "A woman smiles and waves at the camera in a sunny park."
STAGES = ("text", "face", "fuse", "denoise", "decode")


@dataclass
class RunMeasurement:
    """Seconds per stage (STAGES), per step, the peak memory (bytes) and the final latents."""

    stages: dict[str, float] = field(default_factory=dict)
    step_seconds: list[float] = field(default_factory=list)
    peak_memory_bytes: int = 0
    block_evaluations: int = 0
    latents: torch.Tensor | None = None
    mag_ratios: list[float] | None = None  # MagCache's calibration, when recorded (an uncached run)

    def as_json(self) -> dict:
        return {"stages": self.stages, "step_seconds": self.step_seconds, "peak_memory_bytes": self.peak_memory_bytes,
                "block_evaluations": self.block_evaluations}


def stand_in_face(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 512x512 identity image and raw-ArcFace-like vector (the bench needs no face models)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (512, 512, 3), dtype=np.uint8), (rng.standard_normal(512) * 20).astype(np.float32)


def release_fusion_call(text: stages.TextEncoding, face: stages.FaceEncoding) -> ModelCall:
    """The release's step: the transformer fuses the raw T5 / SigLIP / ArcFace inputs itself,
    at every step, instead of reading tokens fused once."""
    def call(model: DenoisingModel, inputs: ModelInputs) -> torch.Tensor:
        device = inputs.hidden.device
        if inputs.branches == 2:
            raw = (torch.cat([text.negative.embeds, text.positive.embeds]), torch.cat([face.uncond.siglip, face.cond.siglip]),
                   torch.cat([face.uncond.arcface, face.cond.arcface]))
        else:
            raw = (text.positive.embeds, face.cond.siglip, face.cond.arcface)
        embeds, siglip, arcface = (t.to(device) for t in raw)
        return model(inputs.hidden, timestep=inputs.timestep, text_embeds=embeds, siglip_embeds=siglip, arcface=arcface,
                     image_rotary_emb=inputs.rotary).sample.float()

    return call


class _Clock:
    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


_PROCESS_PEAK: dict[str, int] = {"bytes": 0}  # the highest peak seen before any reset (loading included)


def process_peak_memory(device: torch.device) -> int:
    """The process's peak since it started (loading included), across the resets of the runs."""
    return max(_PROCESS_PEAK["bytes"], _peak_memory(device))


def _start_memory(device: torch.device) -> None:
    _PROCESS_PEAK["bytes"] = process_peak_memory(device)
    gc.collect()
    trim_heap()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()


def _peak_memory(device: torch.device) -> int:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else peak_rss_bytes()


def _step_done(stamps: list[float], clock: "_Clock", on_step: Callable[[], None] | None) -> None:
    stamps.append(clock.now())
    if on_step is not None:
        on_step()


@torch.no_grad()
def measure_run(pipe: EchoVideoPipeline, settings: SamplingSettings, *, options: SpeedOptions = SpeedOptions(),
                release_fusion: bool = False, decode_dtype: torch.dtype = torch.float32, vae_tiling: bool = False,
                seed: int = 0, record_mag_ratios: bool = False, mag_ratios: list[float] | None = None,
                on_step: Callable[[], None] | None = None) -> RunMeasurement:
    """Generate once (the stages in order), timing each; see the module docstring.
    `record_mag_ratios` calibrates MagCache on this (uncached) run; `mag_ratios` feeds it;
    `on_step()` runs after every step (a progress bar), outside the clock's reach."""
    device = pipe.device
    clock, result = _Clock(device), RunMeasurement()
    image, arcface = stand_in_face(seed)
    settings = settings.check()
    _start_memory(device)
    start = clock.now()
    text = stages.encode_text(pipe._text_encoder(), PROMPT, "", max_length=int(pipe.transformer.config.max_text_seq_length))
    result.stages["text"] = (mark := clock.now()) - start
    face = stages.face_features(pipe._face_encoder(), image, arcface)
    result.stages["face"] = (now := clock.now()) - mark
    conditioning = stages.fuse(pipe.model, text, face.uncond, face.cond, do_cfg=uses_guidance(settings.guidance_scale))
    result.stages["fuse"] = (mark := clock.now()) - now
    stamps = [mark]
    with ExitStack() as stack:
        speed = stack.enter_context(accelerated(pipe.transformer, options, num_inference_steps=settings.num_inference_steps,
                                                mag_ratios=mag_ratios))
        if record_mag_ratios:
            result.mag_ratios = stack.enter_context(record_ratios(pipe.transformer))
        call = release_fusion_call(text, face) if release_fusion else speed.model_call
        latents = stages.sample(pipe.model, conditioning, image, settings, generator=torch.Generator().manual_seed(seed),
                                on_step=lambda *_: _step_done(stamps, clock, on_step), model_call=call)
        result.block_evaluations = speed.block_evaluations
    result.step_seconds = [b - a for a, b in zip(stamps[1:], stamps[2:])] if len(stamps) > 2 else []
    result.step_seconds.insert(0, stamps[1] - stamps[0] if len(stamps) > 1 else 0.0)  # includes noise + face latent
    result.stages["denoise"] = (mark := clock.now()) - stamps[0]
    stages.decode(pipe.model, latents.to(device), dtype=decode_dtype, tiling=vae_tiling)
    result.stages["decode"] = clock.now() - mark
    result.peak_memory_bytes = _peak_memory(device)
    result.latents = latents.float().cpu()
    return result
