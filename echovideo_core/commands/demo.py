"""`echovideo demo --out PATH`: the main job in one command.

With the real model (in ./models/echovideo or $ECHOVIDEO_MODEL_DIR, face models in its
face_encoder/ folder) it prepares a face photo (default: scikit-image's astronaut) and
generates a video. Without it, it writes the tiny random-weight model to a cache folder and
runs the same pipeline end to end at 64x64: the output is then noise from random weights,
which proves the installation works, not the model. An existing --out is never replaced
(unless --overwrite): a rerun writes the next free name, `NAME-1.mp4`, `NAME-2.mp4`, ...
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np
import PIL.Image

from echovideo_core.commands.generate import add_generation_options, default_model_dir, generate_video
from echovideo_core.errors import InvalidInputError
from echovideo_core.face.errors import FaceError

logger = logging.getLogger(__name__)

DEFAULT_PROMPT = "A woman smiles and looks at the camera, soft daylight, natural colours."
TINY_SETTINGS = {"size": (64, 64), "frames": 9, "steps": 4}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the main job (real model if present, else the tiny one)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output .mp4")
    parser.add_argument("--face", type=Path, default=None, help="face photo (default: scikit-image's astronaut)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt")
    parser.add_argument("--tiny", action="store_true", help="use the tiny model even if the real one is present")
    add_generation_options(parser)
    parser.set_defaults(run=run)


def tiny_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "echovideo" / "tiny-model"


def astronaut_photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def tiny_identity(photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Without face models: a centred square crop as identity image, a seeded ArcFace stand-in."""
    h, w = photo.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = PIL.Image.fromarray(photo[top : top + side, left : left + side]).resize((512, 512))
    arcface = np.random.default_rng(0).standard_normal(512).astype(np.float32) * 20
    return np.asarray(crop), arcface


def next_free_path(path: Path) -> Path:
    """`path` if it does not exist, else the first free `stem-N.suffix` beside it."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    if candidate != path:
        logger.info("%s exists; writing %s instead (pass --overwrite to replace it)", path, candidate)
    return candidate


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (InvalidInputError, FaceError, FileNotFoundError) as err:
        logger.error("%s", err)
        return 2


def _run(args: argparse.Namespace) -> int:
    model_dir = default_model_dir()
    real = (model_dir / "transformer").is_dir() and not args.tiny
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.overwrite:
        args.out = next_free_path(args.out)
    if real:
        from echovideo_core.face import FacePreparer

        logger.info("using the EchoVideo model in %s", model_dir)
        photo = str(args.face) if args.face else astronaut_photo()
        face = FacePreparer(model_dir / "face_encoder").prepare(photo)
        for warning in face.warnings:
            logger.warning("face preparation: %s", warning)
        identity, arcface = face.identity_image, face.arcface
    else:
        from echovideo_core.tiny import is_current_tiny_model, write_tiny_model

        model_dir = tiny_cache_dir()
        logger.warning("no EchoVideo model in %s: running the TINY RANDOM-WEIGHT model from %s at 64x64, "
                       "9 frames, 4 steps; the video will be NOISE (it only proves the pipeline runs end to end)",
                       default_model_dir(), model_dir)
        if not is_current_tiny_model(model_dir):
            import transformers

            transformers.utils.logging.disable_progress_bar()
            write_tiny_model(model_dir)
        photo = np.asarray(PIL.Image.open(args.face).convert("RGB")) if args.face else astronaut_photo()
        identity, arcface = tiny_identity(photo)
        args.size, args.frames, args.steps = TINY_SETTINGS["size"], TINY_SETTINGS["frames"], TINY_SETTINGS["steps"]
    summary = generate_video(args, model_dir, identity, arcface)
    print(summary + ("" if real else " (tiny random model: noise)"))
    return 0
