"""One video against one reference face -> every metric of `echovideo eval`.

    evaluation = evaluate_video(frames, reference, models, prompt="...", scored_frames=32)
    evaluation.to_json()   # the JSON `echovideo eval --json` writes

Face metrics use the evenly spaced scored frames; motion uses the whole video. Every metric
whose model is missing, or that has nothing to score, is None with a note saying why.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from echovideo_core.evaluation.clip_score import clip_cosines, clip_score
from echovideo_core.evaluation.copy_paste import FacePose, face_mask, face_pose, masked_ssim, pose_spread
from echovideo_core.evaluation.curricularface import aligned_112, curricularface_embeddings
from echovideo_core.evaluation.frame_faces import FrameFace, Reference, find_frame_faces
from echovideo_core.evaluation.frechet import frechet_distance
from echovideo_core.evaluation.identity import cosine, identity_average, identity_variation
from echovideo_core.evaluation.inception import inception_features
from echovideo_core.evaluation.models import MetricModels
from echovideo_core.evaluation.motion import dynamic_degree
from echovideo_core.evaluation.sampling import DEFAULT_SCORED_FRAMES, evenly_spaced_indices
from echovideo_core.io import DEFAULT_FPS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameScore:
    """One scored frame. A miss (face False) has None for every face metric."""

    index: int
    face: bool
    det_score: float | None = None
    facesim_arc: float | None = None
    facesim_cur: float | None = None
    ssim: float | None = None
    clip_cosine: float | None = None
    pose: FacePose | None = None

    def to_json(self) -> dict:
        pose = dataclasses.asdict(self.pose) if self.pose else dict.fromkeys(f.name for f in dataclasses.fields(FacePose))
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "pose"}
        return {**fields, **pose}


@dataclass(frozen=True)
class VideoEvaluation:
    """The metrics of one video (see docs/identity_study.md for each definition).

    frame_features / reference_features: Inception pool3 features (N, 2048) of the face
    crops and of the reference crop, kept for a batch's pooled FID (not in the JSON)."""

    facesim_arc: float | None
    facesim_cur: float | None
    identity_average: float | None
    identity_variation: float | None
    clip_score: float | None
    fid: float | None
    dynamic_degree: float | None
    motion: float | None
    copy_paste_ssim: float | None
    pose_spread: float | None
    frames_scored: int
    frames_missed: int
    per_frame: tuple[FrameScore, ...]
    notes: tuple[str, ...]
    frame_features: np.ndarray | None = None
    reference_features: np.ndarray | None = None

    def to_json(self) -> dict:
        skip = {"per_frame", "frame_features", "reference_features", "notes"}
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        return {**data, "per_frame": [frame.to_json() for frame in self.per_frame], "notes": list(self.notes)}

    def summary_lines(self) -> list[str]:
        """The averages in words (the CLI's summary line, the node's STRING output)."""
        def show(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        return [
            f"FaceSim-Arc / Identity Average {show(self.facesim_arc)}, Identity Variation {show(self.identity_variation)}",
            f"FaceSim-Cur {show(self.facesim_cur)}, CLIPScore {show(self.clip_score)}, FID {show(self.fid)}",
            f"Dynamic Degree {show(self.dynamic_degree)} (motion {show(self.motion)} px at 256)",
            f"copy-paste SSIM {show(self.copy_paste_ssim)}, pose spread {show(self.pose_spread)}",
            f"frames: {self.frames_scored} scored, {self.frames_missed} missed (no face)",
        ]


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _curricularface(models: MetricModels, reference: Reference, frames: np.ndarray, faces: list[FrameFace | None],
                    notes: list[str]) -> list[float | None]:
    if models.curricularface is None or reference.crop_112 is None:
        if models.curricularface is not None:
            notes.append("facesim_cur: off, the reference has no landmarks to align a 112 px crop")
        return [None] * len(faces)
    found = [face for face in faces if face is not None]
    crops = [aligned_112(frames[face.index], face.landmarks5) for face in found]
    vectors = curricularface_embeddings(models.curricularface, [reference.crop_112, *crops])
    by_index = {face.index: cosine(vector, vectors[0]) for face, vector in zip(found, vectors[1:])}
    return [None if face is None else by_index[face.index] for face in faces]


def _fid(models: MetricModels, reference: Reference, faces: list[FrameFace], notes: list[str]
         ) -> tuple[float | None, np.ndarray | None, np.ndarray | None]:
    if models.inception is None:
        return None, None, None
    if reference.aligned_crop is None:
        notes.append("fid: off, the reference is an identity image without its unmasked aligned crop")
        return None, None, None
    reference_features = inception_features(models.inception, [reference.aligned_crop])
    if not faces:
        return None, None, reference_features
    frame_features = inception_features(models.inception, [face.aligned_crop for face in faces])
    return frechet_distance(frame_features, reference_features), frame_features, reference_features


def evaluate_video(frames: np.ndarray, reference: Reference, models: MetricModels, *, prompt: str | None = None,
                   scored_frames: int = DEFAULT_SCORED_FRAMES, fps: float = DEFAULT_FPS) -> VideoEvaluation:
    """(F, H, W, 3) uint8 RGB frames -> VideoEvaluation (face metrics on `scored_frames`
    evenly spaced frames; motion on every frame at about 8 fps)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (F, H, W, 3) uint8, got shape {frames.shape} dtype {frames.dtype}")
    indices = evenly_spaced_indices(len(frames), scored_frames)
    notes = list(models.notes)
    if reference.method != "insightface":
        notes.append(f"the reference face was found by {reference.method}, not insightface")
    faces = find_frame_faces(models.detector, frames, indices)
    found = [face for face in faces if face is not None]
    arc = [None if face is None else cosine(face.embedding, reference.arcface) for face in faces]
    cur = _curricularface(models, reference, frames, faces, notes)
    mask = face_mask(reference.identity_image)
    ssim = [None if face is None else masked_ssim(reference.identity_image, face.aligned_crop, mask) for face in faces]
    clip = [None] * len(faces)
    if models.clip is not None and prompt:
        clip = [float(c) for c in clip_cosines(models.clip, [frames[i] for i in indices], prompt)]
    fid, frame_features, reference_features = _fid(models, reference, found, notes)
    motion = dynamic_degree(frames, fps)
    if motion is None:
        notes.append("dynamic_degree: off, the video has fewer than two frames at 8 fps")
    if not found:
        notes.append(f"no face found in any of the {len(indices)} scored frames: face metrics are null")
    elif len(found) < len(indices):
        notes.append(f"{len(indices) - len(found)} of {len(indices)} scored frames had no face (misses, not scored)")
    per_frame = tuple(
        FrameScore(index=int(i), face=face is not None, det_score=None if face is None else face.score,
                   facesim_arc=a, facesim_cur=c, ssim=s, clip_cosine=p,
                   pose=None if face is None else face_pose(face.landmarks5))
        for i, face, a, c, s, p in zip(indices, faces, arc, cur, ssim, clip)
    )
    return VideoEvaluation(
        facesim_arc=identity_average(arc), facesim_cur=identity_average(cur), identity_average=identity_average(arc),
        identity_variation=identity_variation(arc), clip_score=clip_score([c for c in clip if c is not None]),
        fid=fid, dynamic_degree=None if motion is None else motion.dynamic_degree,
        motion=None if motion is None else motion.motion, copy_paste_ssim=_mean(ssim),
        pose_spread=pose_spread([face.landmarks5 for face in found]), frames_scored=len(found),
        frames_missed=len(indices) - len(found), per_frame=per_frame, notes=tuple(notes),
        frame_features=frame_features, reference_features=reference_features,
    )
