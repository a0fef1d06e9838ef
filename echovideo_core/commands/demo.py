"""`echovideo demo --out PATH`: the main job in one command.

With the real model (in ./models/echovideo or $ECHOVIDEO_MODEL_DIR, face models in its
face_encoder/ folder) it prepares a face photo (default: scikit-image's astronaut) and
generates a video (default 480x848, 49 frames, 50 steps). Without it, it writes the tiny
random-weight model once to a cache folder ($XDG_CACHE_HOME/echovideo/tiny-model, by
default ~/.cache/echovideo/tiny-model; rewritten only when the kit changes) and runs the
same pipeline end to end (default 64x64, 9 frames, 4 steps; --size, --frames and --steps
are honoured): the output is then noise from random weights, which proves the installation
works, not the model. An existing --out is never replaced (unless --overwrite): a rerun
writes the next free name, `NAME-1.mp4`, `NAME-2.mp4`, ...
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from echovideo_core.commands.generate import (RELEASE_SETTINGS, add_generation_options, check_generation_args,
                                              check_generation_paths, check_identity_controls, check_model_files,
                                              check_weight_formats, default_model_dir, generate_video, pick_device)
from echovideo_core.paths import check_input_file

logger = logging.getLogger(__name__)

DEFAULT_PROMPT = "A woman smiles and looks at the camera, soft daylight, natural colours."
TINY_SETTINGS = {"size": (64, 64), "frames": 9, "steps": 4}
TINY_THREADS = 4  # tiny tensors: more threads only add overhead (see `echovideo --threads`)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the main job (real model if present, else the tiny one)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output .mp4 (its folder is created)")
    parser.add_argument("--face", type=Path, default=None, help="face photo (default: scikit-image's astronaut)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt")
    parser.add_argument("--tiny", action="store_true", help="use the tiny model even if the real one is present")
    add_generation_options(parser, size_defaults="default 480x848, 49 frames, 50 steps with the real model; "
                                                 "64x64, 9 frames, 4 steps with the tiny one")
    parser.set_defaults(run=run)


def tiny_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "echovideo" / "tiny-model"


def astronaut_photo():
    from skimage import data

    return data.astronaut()


def tiny_identity(photo):
    """Without face models: a centred square crop as identity image, a seeded ArcFace stand-in."""
    import numpy as np
    import PIL.Image

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
    model_dir = default_model_dir()
    real = (model_dir / "transformer").is_dir() and not args.tiny
    for name, value in (RELEASE_SETTINGS if real else TINY_SETTINGS).items():
        if getattr(args, name) is None:  # honour what the user gave, fill in the rest
            setattr(args, name, value)
    check_generation_args(args)
    check_identity_controls(args)
    check_weight_formats(args)
    if not args.overwrite:
        args.out = next_free_path(args.out)
    check_generation_paths(args, create_parents=True)
    if args.face is not None:
        check_input_file(args.face, "--face")
    if real:
        check_model_files(args, model_dir)
    pick_device(args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if real:
        from echovideo_core.face import FacePreparer
        from echovideo_core.face.image import load_rgb

        logger.info("using the EchoVideo model in %s", model_dir)
        photo = load_rgb(args.face) if args.face else astronaut_photo()
        face = FacePreparer(model_dir / "face_encoder").prepare(photo)
        identity, arcface = face.identity_image, face.arcface
    else:
        identity, arcface, model_dir = _tiny_setup(args)
    summary = generate_video(args, model_dir, identity, arcface)
    if summary:  # only the process that wrote the outputs reports
        print(summary + ("" if real else f" (tiny random model from {model_dir}: noise)"))
    return 0


def _tiny_setup(args: argparse.Namespace):
    """The tiny model from its cache (written there first when missing or outdated)."""
    from echovideo_core.face.image import load_rgb
    from echovideo_core.tiny import is_current_tiny_model, write_tiny_model

    if getattr(args, "torch_threads", None) is None:
        import torch

        torch.set_num_threads(min(TINY_THREADS, torch.get_num_threads()))
    cache = tiny_cache_dir()
    height, width = args.size
    logger.warning("no EchoVideo model in %s: running the TINY RANDOM-WEIGHT model (cached in %s) at %dx%d, "
                   "%d frames, %d steps; the video will be NOISE (it only proves the pipeline runs end to end)",
                   default_model_dir(), cache, height, width, args.frames, args.steps)
    if not is_current_tiny_model(cache):
        write_tiny_model(cache, overwrite=True)  # our own cache folder: an outdated kit is replaced
    photo = load_rgb(args.face) if args.face else astronaut_photo()
    identity, arcface = tiny_identity(photo)
    return identity, arcface, cache
