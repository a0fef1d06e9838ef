"""Where the face models live, and their PyTorch weights (BiSeNet parser, RetinaFace).

Layout of the face-model folder (`--face-models DIR`; nothing is ever downloaded):

    DIR/antelopev2/scrfd_10g_bnkps.onnx, glintr100.onnx   (insightface antelopev2; the
        mistaken nesting DIR/antelopev2/antelopev2/*.onnx and DIR/models/antelopev2 work too)
    DIR/parsing_bisenet.pth            (or .safetensors; the BiSeNet face parser)
    DIR/detection_Resnet50_Final.pth   (or .safetensors; RetinaFace, only for the fallback)

The .pth files are facexlib's releases; they are read weights-only through the library's
one reader, checked key by key (a DataParallel `module.` prefix is accepted; BatchNorm's
`num_batches_tracked` counters may be absent: they do not affect inference).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from echovideo_core.errors import CheckpointMismatchError, MissingModelFilesError, folder_contents
from echovideo_core.face.errors import FaceModelsMissingError, FaceWeightsMismatchError
from echovideo_core.loading.state_dict import assign_strict, read_state_dict, strip_common_prefix

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
    return next((root / name for name in names if (root / name).is_file()), None)


def find_antelopev2(models_dir: Path) -> Path:
    """The folder holding the antelopev2 .onnx files (either nesting), or a clear error."""
    for relative in ANTELOPEV2_DIRS:
        folder = models_dir / relative
        if all((folder / name).is_file() for name in ANTELOPEV2_FILES):
            return folder
    looked = ", ".join(str(models_dir / rel) for rel in ANTELOPEV2_DIRS)
    raise FaceModelsMissingError(
        f"insightface antelopev2 models not found; looked in {looked} for {', '.join(ANTELOPEV2_FILES)} "
        f"({models_dir}: {folder_contents(models_dir)}). Unzip antelopev2 so that these files sit in "
        f"{models_dir / 'antelopev2'}/ (nothing is downloaded).", path=models_dir
    )


def find_face_models(models_dir: str | os.PathLike) -> FaceModelPaths:
    """Locate every face model under `models_dir`; raises FaceModelsMissingError naming files."""
    root = Path(models_dir).expanduser()
    if not root.is_dir():
        raise FaceModelsMissingError(
            f"face model folder not found: {root} (expected antelopev2/{ANTELOPEV2_FILES[0]}, "
            f"antelopev2/{ANTELOPEV2_FILES[1]} and {PARSER_FILES[0]} in it)", path=root
        )
    antelopev2 = find_antelopev2(root)
    parser = _first_file(root, PARSER_FILES)
    if parser is None:
        raise FaceModelsMissingError(
            f"face parser not found: add {root / PARSER_FILES[0]} (or {PARSER_FILES[1]}); {root}: "
            f"{folder_contents(root)}", path=root
        )
    retinaface = _first_file(root, RETINAFACE_FILES)
    if retinaface is None:
        logger.warning(
            "%s not found: the RetinaFace fallback for photos insightface misses is off", root / RETINAFACE_FILES[0]
        )
    return FaceModelPaths(antelopev2=antelopev2, parser=parser, retinaface=retinaface)


def load_face_weights(model: nn.Module, path: str | os.PathLike, what: str) -> nn.Module:
    """Fill `model` from a facexlib-style weight file, strictly; face errors name the file."""
    try:
        state, _ = read_state_dict(path)
    except MissingModelFilesError as err:
        raise FaceModelsMissingError(str(err)) from err
    except CheckpointMismatchError as err:
        raise FaceWeightsMismatchError(str(err)) from err
    assign_strict(model, strip_common_prefix(state, ("module.",)), ignore_suffixes=("num_batches_tracked",),
                  what=f"{what} {os.fspath(path)} does not match the released layout", error=FaceWeightsMismatchError)
    return model
