"""The ComfyUI node's core call: IMAGE frames + an encoded face -> plot and averages.

The node has the face models already loaded (ECHO_FACE_MODELS) and the identity as
encoded for generation (ECHO_FACE: identity image + ArcFace), so FaceSim-Arc, Identity
Average / Variation, the copy-paste SSIM, the pose spread and the dynamic degree are
available; FaceSim-Cur, FID and CLIPScore need weights and a reference photo the graph does
not carry, and are left to `echovideo eval` (said in the notes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from echovideo_core.evaluation.evaluate import VideoEvaluation, evaluate_video
from echovideo_core.evaluation.frame_faces import reference_from_encoding
from echovideo_core.evaluation.models import MetricModels
from echovideo_core.evaluation.plot import identity_plot
from echovideo_core.evaluation.sampling import DEFAULT_SCORED_FRAMES
from echovideo_core.io import DEFAULT_FPS, frame_to_uint8

NODE_NOTE = "FaceSim-Cur, FID and CLIPScore: use `echovideo eval` (they need their weights and the photo)"


@dataclass(frozen=True)
class IdentityScore:
    """evaluation: every metric; plot: ComfyUI IMAGE (1, H, W, 3) float32 in [0, 1]; text:
    the averages, one per line, then the notes."""

    evaluation: VideoEvaluation
    plot: torch.Tensor
    text: str


def images_to_frames(images: torch.Tensor) -> np.ndarray:
    """ComfyUI IMAGE (F, H, W, 3) float in [0, 1] -> (F, H, W, 3) uint8."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected IMAGE frames (F, H, W, 3), got shape {tuple(images.shape)}")
    return np.stack([frame_to_uint8(frame) for frame in images])


def identity_score(detector: Any, face: Any, images: torch.Tensor, *, scored_frames: int = DEFAULT_SCORED_FRAMES,
                   fps: float = DEFAULT_FPS) -> IdentityScore:
    """Score `images` against the encoded `face` with the frames' insightface `detector`."""
    models = MetricModels(detector=detector, notes=(NODE_NOTE,))
    evaluation = evaluate_video(images_to_frames(images), reference_from_encoding(face), models,
                                scored_frames=scored_frames, fps=fps)
    picture = identity_plot(evaluation, title="EchoVideo Identity Score")
    plot = torch.from_numpy(picture.astype(np.float32) / 255.0)[None]
    return IdentityScore(evaluation=evaluation, plot=plot, text="\n".join([*evaluation.summary_lines(), *evaluation.notes]))
