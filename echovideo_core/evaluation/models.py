"""The optional metric weights: where they are looked up, and loading them.

Looked up in the face-model folder (`--face-models DIR`, the folder `echovideo face` uses),
unless given explicitly (`--curricularface FILE`, `--inception FILE`, `--clip DIR`):

    DIR/CurricularFace_Backbone.pth (or .safetensors)   FaceSim-Cur
    DIR/pt_inception-2015-12-05-6726825d.pth             FID of face crops
    DIR/clip/   (a transformers CLIP folder)              CLIPScore (needs a prompt too)

A missing default file switches its metric off (null in the JSON) with a note naming the
path; nothing is ever downloaded. A file named explicitly but absent is the user's mistake
and an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from echovideo_core.errors import MissingModelFilesError
from echovideo_core.evaluation.clip_score import CLIP_DIR, ClipScorer, load_clip
from echovideo_core.evaluation.curricularface import CURRICULARFACE_FILES, IRBackbone, load_curricularface
from echovideo_core.evaluation.inception import INCEPTION_FILE, FIDInceptionV3, load_fid_inception


@dataclass(frozen=True)
class MetricWeights:
    """Resolved optional weight paths (None: metric off) and the notes saying why."""

    curricularface: Path | None
    inception: Path | None
    clip: Path | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class MetricModels:
    """detector: the insightface detector of the frames (`InsightFaceDetector`); the optional
    models are None when their weights are absent; notes: why a metric is off."""

    detector: Any
    curricularface: IRBackbone | None = None
    inception: FIDInceptionV3 | None = None
    clip: ClipScorer | None = None
    notes: tuple[str, ...] = ()


def _resolve(explicit: Path | None, defaults: list[Path], option: str, metric: str, notes: list[str]) -> Path | None:
    if explicit is not None:
        if not explicit.exists():
            raise MissingModelFilesError(f"{option} {explicit}: not found")
        return explicit
    for candidate in defaults:
        if candidate.exists():
            return candidate
    notes.append(f"{metric}: off, {defaults[0]} not found (pass {option} to point elsewhere; nothing is downloaded)")
    return None


def find_metric_weights(face_models_dir: str | Path, *, curricularface: Path | None = None,
                        inception: Path | None = None, clip: Path | None = None,
                        want_clip: bool = True) -> MetricWeights:
    """Resolve every optional weight; `want_clip=False` (no prompt) skips CLIP with a note."""
    root = Path(face_models_dir)
    notes: list[str] = []
    cur = _resolve(curricularface, [root / name for name in CURRICULARFACE_FILES], "--curricularface",
                   "facesim_cur", notes)
    fid = _resolve(inception, [root / INCEPTION_FILE], "--inception", "fid", notes)
    clip_dir = None
    if want_clip:
        clip_dir = _resolve(clip, [root / CLIP_DIR], "--clip", "clip_score", notes)
    else:
        notes.append("clip_score: off, no prompt given (--prompt)")
    return MetricWeights(curricularface=cur, inception=fid, clip=clip_dir, notes=tuple(notes))


def load_metric_models(detector: Any, weights: MetricWeights, device: torch.device | str = "cpu") -> MetricModels:
    """Load the optional models whose weights were found (the notes travel on to the result)."""
    return MetricModels(
        detector=detector,
        curricularface=None if weights.curricularface is None else load_curricularface(weights.curricularface, device),
        inception=None if weights.inception is None else load_fid_inception(weights.inception, device),
        clip=None if weights.clip is None else load_clip(weights.clip, device),
        notes=weights.notes,
    )
