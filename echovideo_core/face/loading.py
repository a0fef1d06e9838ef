"""Where the face models live, and which device / ONNX providers run them.

Layout of the face-model folder (`--models DIR`; nothing is ever downloaded):

    DIR/antelopev2/scrfd_10g_bnkps.onnx, glintr100.onnx   (insightface antelopev2; the
        mistaken nesting DIR/antelopev2/antelopev2/*.onnx and DIR/models/antelopev2 work too)
    DIR/parsing_bisenet.pth            (or .safetensors; the BiSeNet face parser)
    DIR/detection_Resnet50_Final.pth   (or .safetensors; RetinaFace, only for the fallback)
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime
import torch

from echovideo_core.face.errors import FaceModelsMissingError

logger = logging.getLogger(__name__)

ANTELOPEV2_FILES = ("scrfd_10g_bnkps.onnx", "glintr100.onnx")
ANTELOPEV2_DIRS = ("antelopev2", "antelopev2/antelopev2", "models/antelopev2", "models/antelopev2/antelopev2")
PARSER_FILES = ("parsing_bisenet.pth", "parsing_bisenet.safetensors")
RETINAFACE_FILES = ("detection_Resnet50_Final.pth", "detection_Resnet50_Final.safetensors")


@dataclass(frozen=True)
class FaceModelPaths:
    """Resolved model files. `retinaface` is None when absent (the fallback is then off)."""

    antelopev2: Path
    parser: Path
    retinaface: Path | None


def _first_file(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def find_antelopev2(models_dir: Path) -> Path:
    """The folder holding the antelopev2 .onnx files (either nesting), or a clear error."""
    for relative in ANTELOPEV2_DIRS:
        folder = models_dir / relative
        if all((folder / name).is_file() for name in ANTELOPEV2_FILES):
            return folder
    looked = ", ".join(str(models_dir / rel) for rel in ANTELOPEV2_DIRS)
    raise FaceModelsMissingError(
        f"insightface antelopev2 models not found; looked in {looked} for {', '.join(ANTELOPEV2_FILES)}. "
        "Unzip antelopev2 so that these files sit in DIR/antelopev2/ (nothing is downloaded)."
    )


def find_face_models(models_dir: str | os.PathLike) -> FaceModelPaths:
    """Locate every face model under `models_dir`; raises FaceModelsMissingError naming files."""
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        raise FaceModelsMissingError(f"face model folder not found: {root}")
    antelopev2 = find_antelopev2(root)
    parser = _first_file(root, PARSER_FILES)
    if parser is None:
        raise FaceModelsMissingError(
            f"face parser not found: expected {root / PARSER_FILES[0]} (or {PARSER_FILES[1]})"
        )
    retinaface = _first_file(root, RETINAFACE_FILES)
    if retinaface is None:
        logger.warning(
            "%s not found: the RetinaFace fallback for photos insightface misses is off", root / RETINAFACE_FILES[0]
        )
    return FaceModelPaths(antelopev2=antelopev2, parser=parser, retinaface=retinaface)


def onnx_providers() -> list[str]:
    """CUDA (with CPU behind it) when this onnxruntime build offers it, else CPU."""
    available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def torch_device() -> torch.device:
    """Device for the parser / RetinaFace: the GPU when torch sees one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
