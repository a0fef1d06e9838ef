"""`echovideo face PHOTO --models DIR --out face.png`: prepare the identity image.

Writes the identity image (512 x 512, the masked aligned face the pipeline consumes), the raw
ArcFace vector next to it (`face.npy`, float32 (512,)) and a side-by-side debug picture
(photo with box and 5 points | aligned crop with the template | parsing colours | result),
by default `face_debug.png`. DIR holds antelopev2/, parsing_bisenet.pth and, for the
fallback, detection_Resnet50_Final.pth (see the README, section "Face preparation").
Existing outputs are kept unless --overwrite; each file is written atomically.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from echovideo_core.errors import InvalidInputError
from echovideo_core.paths import check_input_file, check_input_folder, check_output_file

logger = logging.getLogger(__name__)

OUTPUT_BYTES = 512 * 512 * 3 + 2048 * 512 * 3 + 4096  # raw sizes: identity image, debug picture, vector


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("face", help="photo -> identity image + ArcFace vector (+ debug picture)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photo", type=Path, help="face photo (any format Pillow reads)")
    parser.add_argument("--models", type=Path, required=True, help="face model folder")
    parser.add_argument("--out", type=Path, required=True, help="identity image (.png; its folder is created)")
    parser.add_argument("--debug", type=Path, default=None, help="debug picture (default: OUT stem + _debug.png)")
    parser.add_argument("--face-index", type=int, default=0, help="which face, 0 = largest (default 0)")
    parser.add_argument("--allow-no-face", action="store_true",
                        help="use the whole photo when no face is found instead of failing")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(run=run)


def image_suffix_check(path: Path, flag: str) -> None:
    """The image format comes from the file name: it must be one Pillow writes."""
    from PIL import Image

    if path.suffix.lower() not in Image.registered_extensions():
        raise InvalidInputError(f"{flag} {path}: the name must end in an image extension such as .png")


def run(args: argparse.Namespace) -> int:
    if args.face_index < 0:
        raise InvalidInputError(f"--face-index must be >= 0 (0 = the largest face), got {args.face_index}")
    debug_path = args.debug or args.out.with_name(args.out.stem + "_debug.png")
    outputs = {"--out": args.out, "--out (ArcFace vector)": args.out.with_suffix(".npy"), "--debug": debug_path}
    if len(set(outputs.values())) < len(outputs):
        raise InvalidInputError(f"--out {args.out} and --debug {debug_path} name the same file")
    image_suffix_check(args.out, "--out")
    image_suffix_check(debug_path, "--debug")
    for flag, path in outputs.items():
        check_output_file(path, flag, overwrite=args.overwrite, expected_bytes=OUTPUT_BYTES, create_parents=True)
    check_input_file(args.photo, "PHOTO")
    check_input_folder(args.models, "--models")

    import numpy as np
    from PIL import Image

    from echovideo_core.atomic import atomic_path
    from echovideo_core.face import FacePreparer, debug_picture
    from echovideo_core.face.image import load_rgb

    photo = load_rgb(args.photo)  # a broken photo fails before the face models load
    result = FacePreparer(args.models, allow_no_face=args.allow_no_face).prepare(photo, face_index=args.face_index)
    for path in outputs.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        Image.fromarray(result.identity_image).save(tmp, format=Image.registered_extensions()[args.out.suffix.lower()])
    with atomic_path(outputs["--out (ArcFace vector)"]) as tmp:
        np.save(tmp, result.arcface)
    with atomic_path(debug_path) as tmp:
        Image.fromarray(debug_picture(result)).save(tmp, format=Image.registered_extensions()[debug_path.suffix.lower()])
    score = "-" if result.det_score is None else f"{result.det_score:.3f}"
    print(f"{args.out}: method={result.method} score={score} faces={result.num_faces} "
          f"arcface_norm={np.linalg.norm(result.arcface):.2f} warnings={len(result.warnings)} debug={debug_path}")
    return 0
