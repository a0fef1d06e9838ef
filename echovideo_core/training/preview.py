"""Validation generations during training: an mp4 every N steps and its face score.

The video uses the first training sample's identity image, ArcFace vector and caption (or
`validation.prompt`), at the training size, with a fixed seed, so successive videos differ
only by the weights. The face score is the mean cosine similarity between the reference
ArcFace vector and the ArcFace vectors of faces found in evenly spaced generated frames (the
paper's "identity average" measured on one video). It needs the face models
(`validation.face_models`); without them the score is `None` and the reason is written next
to the video and logged, never a made-up number.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from echovideo_core.training.config import TrainConfig
from echovideo_core.atomic import write_json_atomic
from echovideo_core.evaluation.identity import cosine
from echovideo_core.evaluation.sampling import evenly_spaced_indices
from echovideo_core.training.data import PreparedDataset

logger = logging.getLogger(__name__)

SCORED_FRAMES = 8


@dataclass(frozen=True)
class ValidationResult:
    step: int
    video: str
    prompt: str
    face_score: float | None  # mean ArcFace cosine, reference vs generated frames
    frames_with_face: int
    frames_scored: int
    note: str


def face_score(frames: np.ndarray, reference: np.ndarray, preparer: Any) -> tuple[float | None, int, int]:
    """(mean cosine or None, frames with a face, frames scored) over evenly spaced frames."""
    from echovideo_core.face.errors import FaceError

    picks = evenly_spaced_indices(len(frames), SCORED_FRAMES)
    scores = []
    for i in picks:
        image = (np.clip(frames[i], 0, 1) * 255 + 0.5).astype(np.uint8)
        try:
            scores.append(cosine(preparer.prepare(image).arcface, reference))
        except FaceError:
            continue
    return (float(np.mean(scores)) if scores else None), len(scores), len(picks)


class Validator:
    """Loads the generation components once; `run(model, step)` writes one video + JSON."""

    def __init__(self, cfg: TrainConfig, dataset: PreparedDataset) -> None:
        self.cfg = cfg
        identity, arcface, caption = dataset.identity(0)
        self.identity = identity.numpy()
        self.arcface = arcface.numpy()
        self.prompt = cfg.validation.prompt or caption
        self.settings = dataset.settings
        self.out = Path(cfg.output_dir) / "validation"
        self.pipe = None
        self.preparer, self.face_note = self._face_models()

    def _face_models(self) -> tuple[Any, str]:
        folder = self.cfg.validation.face_models
        if not folder:
            return None, "face score unavailable: validation.face_models is not set"
        try:
            from echovideo_core.face import FacePreparer

            return FacePreparer(folder), ""
        except (OSError, ValueError, ImportError) as err:
            return None, f"face score unavailable: face models in {folder} could not be loaded ({err})"

    def _pipeline(self, model: torch.nn.Module) -> Any:
        from echovideo_core.pipeline import EchoVideoPipeline

        if self.pipe is None:
            folder = self.cfg.model.pipeline or self.cfg.model.pretrained
            # T5 / SigLIP in bf16 under bf16 training (T5-XXL is ~19 GB in float32)
            dtype = torch.bfloat16 if self.cfg.mixed_precision == "bf16" else torch.float32
            self.pipe = EchoVideoPipeline.from_pretrained(folder, transformer=model, torch_dtype=dtype,
                                                          device=model.device)
        self.pipe.transformer = model
        return self.pipe

    @torch.no_grad()
    def run(self, model: torch.nn.Module, step: int) -> ValidationResult:
        from echovideo_core.io import save_video
        from echovideo_core.stages import seeded_generator

        v = self.cfg.validation
        was_training = model.training
        model.eval()
        pipe = self._pipeline(model)
        autocast = torch.autocast(model.device.type, dtype=torch.bfloat16,
                                  enabled=self.cfg.mixed_precision == "bf16")
        try:
            with autocast:
                out = pipe(self.identity, self.arcface, self.prompt, height=int(self.settings["height"]),
                           width=int(self.settings["width"]), num_frames=int(self.settings["num_frames"]),
                           num_inference_steps=v.num_inference_steps, guidance_scale=v.guidance_scale,
                           mode=v.mode, feature_rounding=v.feature_rounding, cfg_schedule=v.cfg_schedule,
                           generator=seeded_generator(v.seed), decode_dtype=torch.float32)
        finally:
            model.train(was_training)
        frames = np.asarray(out.frames[0])
        self.out.mkdir(parents=True, exist_ok=True)
        video = save_video(frames, self.out / f"step_{step:08d}.mp4", overwrite=True)
        score, found, scored = (None, 0, 0)
        note = self.face_note
        if self.preparer is not None:
            score, found, scored = face_score(frames, self.arcface, self.preparer)
            note = "" if score is not None else f"no face found in any of {scored} scored frames"
        result = ValidationResult(step=step, video=str(video), prompt=self.prompt, face_score=score,
                                  frames_with_face=found, frames_scored=scored, note=note)
        write_json_atomic(self.out / f"step_{step:08d}.json", asdict(result))
        logger.info("validation step %d: %s, face score %s%s", step, video,
                    "n/a" if score is None else f"{score:.4f}", f" ({note})" if note else "")
        return result
