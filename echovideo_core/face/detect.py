"""insightface antelopev2 (SCRFD detection + ArcFace recognition) behind a small typed API.

`FaceAnalysis` is built only after the model files were found (its own lookup would try to
download a missing folder). The folder is passed as an absolute path: insightface 2.1 uses a
directory name directly and older releases join it onto their root, which keeps an absolute
path unchanged. Only the detection and recognition tasks are enabled. insightface works on
BGR images; this wrapper takes and returns RGB / photo coordinates.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from echovideo_core.face.errors import FaceModelsMissingError
from echovideo_core.face.devices import onnx_providers

logger = logging.getLogger(__name__)

DET_SIZE = (640, 640)


@dataclass(frozen=True)
class DetectedFace:
    """bbox (4,) x1 y1 x2 y2 and landmarks5 (5, 2) in photo pixels; embedding (512,) raw float32."""

    bbox: np.ndarray
    score: float
    landmarks5: np.ndarray
    embedding: np.ndarray

    @property
    def area(self) -> float:
        return float(max(self.bbox[2] - self.bbox[0], 0.0) * max(self.bbox[3] - self.bbox[1], 0.0))


class InsightFaceDetector:
    """antelopev2 from a local folder; `detect` returns faces largest first."""

    def __init__(self, antelopev2_dir: str | Path, providers: list[str] | None = None,
                 det_size: tuple[int, int] = DET_SIZE, det_thresh: float = 0.5):
        try:
            from insightface.app import FaceAnalysis
        except ImportError as err:
            raise ImportError(
                f"insightface is needed for face preparation ({err}); install it with "
                "`pip install --no-deps insightface==2.1` (see scripts/setup.sh)"
            ) from err

        folder = Path(antelopev2_dir).resolve()
        self.providers = list(providers or onnx_providers())
        self.app = FaceAnalysis(
            name=str(folder), root=str(folder.parent), providers=self.providers,
            allowed_modules=["detection", "recognition"],
        )
        missing = [task for task in ("detection", "recognition") if task not in self.app.models]
        if missing:
            raise FaceModelsMissingError(f"{folder} has no usable ONNX model for: {', '.join(missing)}")
        ctx_id = 0 if self.providers[0] == "CUDAExecutionProvider" else -1
        self.app.prepare(ctx_id=ctx_id, det_thresh=det_thresh, det_size=det_size)
        logger.debug("insightface ready from %s with %s", folder, self.providers)

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in an (H, W, 3) uint8 RGB photo, sorted by box area, largest first."""
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        with warnings.catch_warnings():  # insightface calls a scikit-image API deprecated in 0.26
            warnings.filterwarnings("ignore", message=".*estimate.* is deprecated", category=FutureWarning)
            found = self.app.get(bgr)
        faces = [
            DetectedFace(
                bbox=np.asarray(face.bbox, dtype=np.float64),
                score=float(face.det_score),
                landmarks5=np.asarray(face.kps, dtype=np.float64),
                embedding=np.asarray(face.embedding, dtype=np.float32).reshape(-1),
            )
            for face in found
            if face.kps is not None and face.embedding is not None
        ]
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def embed_crop(self, rgb_crop: np.ndarray) -> np.ndarray:
        """Raw ArcFace (512,) float32 of an already aligned RGB crop (resized to 112 inside)."""
        model = self.app.models["recognition"]
        return np.asarray(model.get_feat(np.ascontiguousarray(rgb_crop[..., ::-1])), dtype=np.float32).reshape(-1)
