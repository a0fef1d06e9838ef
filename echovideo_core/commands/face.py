"""`echovideo face PHOTO --models DIR --out face.png`: prepare the identity image.

Writes the identity image (512 x 512, the masked aligned face the pipeline consumes), the raw
ArcFace vector next to it (`face.npy`, float32 (512,)) and a side-by-side debug picture
(photo with box and 5 points | aligned crop with the template | parsing colours | result),
by default `face_debug.png`. DIR holds antelopev2/, parsing_bisenet.pth and, for the
fallback, detection_Resnet50_Final.pth (see the README, section "Face preparation").
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("face", help="photo -> identity image + ArcFace vector (+ debug picture)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path, help="face photo (any format Pillow reads)")
    parser.add_argument("--models", type=Path, required=True, help="face model folder")
    parser.add_argument("--out", type=Path, required=True, help="identity image (.png)")
    parser.add_argument("--debug", type=Path, default=None, help="debug picture (default: OUT stem + _debug.png)")
    parser.add_argument("--face-index", type=int, default=0, help="which face, 0 = largest (default 0)")
    parser.add_argument("--allow-no-face", action="store_true",
                        help="use the whole photo when no face is found instead of failing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from echovideo_core.face import FacePreparer, NoFaceError, debug_picture

    preparer = FacePreparer(args.models, allow_no_face=args.allow_no_face)
    try:
        result = preparer.prepare(args.photo, face_index=args.face_index)
    except NoFaceError as err:
        logger.error("%s", err)
        return 1
    debug_path = args.debug or args.out.with_name(args.out.stem + "_debug.png")
    for path in (args.out, debug_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(result.identity_image).save(args.out)
    np.save(args.out.with_suffix(".npy"), result.arcface)
    Image.fromarray(debug_picture(result)).save(debug_path)
    score = "-" if result.det_score is None else f"{result.det_score:.3f}"
    print(f"{args.out}: method={result.method} score={score} faces={result.num_faces} "
          f"arcface_norm={np.linalg.norm(result.arcface):.2f} warnings={len(result.warnings)} debug={debug_path}")
    return 0
