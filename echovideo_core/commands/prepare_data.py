"""`echovideo prepare-data`: clips + captions -> the cached training set (resumable)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"size must be HEIGHTxWIDTH, e.g. 480x848 (got {text!r})") from err
    return height, width


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare-data", help="cache T5, VAE latents, SigLIP, ArcFace and face latents for training",
        description=__doc__ + " Clips without a face are skipped and listed; finished shards are kept.",
    )
    parser.add_argument("--videos", type=Path, required=True, help="folder the manifest's video/face paths are relative to")
    parser.add_argument("--captions", type=Path, required=True,
                        help='JSONL manifest, one {"video": path, "caption": text, "face": optional photo} per line')
    parser.add_argument("--out", type=Path, required=True, help="output folder (index.json + shards/)")
    parser.add_argument("--model", type=Path, required=True, help="released EchoVideo folder (vae/, text_encoder/, ...)")
    parser.add_argument("--face-models", type=Path, required=True, help="face model folder (antelopev2/, parsing_bisenet.pth)")
    parser.add_argument("--size", type=_size, default=(480, 848), help="training HEIGHTxWIDTH (default 480x848)")
    parser.add_argument("--frames", type=int, default=49, help="frames per window, 4k+1 (default 49)")
    parser.add_argument("--stride", type=int, default=1, help="take every STRIDE-th source frame (default 1)")
    parser.add_argument("--windows", type=int, default=1, help="non-overlapping windows per clip (default 1)")
    parser.add_argument("--face-frame", choices=("first", "middle"), default="middle",
                        help="frame of the first window used for the face when no photo is given")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cached latent samples")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="T5 and SigLIP dtype (bfloat16 halves T5-XXL's ~19 GB; the VAE stays float32)")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu", help="device for the encoders")
    parser.set_defaults(run=run)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run(args: argparse.Namespace) -> int:
    from echovideo_core.training.prepare import PrepareSettings, load_encoders, prepare_dataset, read_manifest

    import torch

    height, width = args.size
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    try:
        settings = PrepareSettings(height=height, width=width, num_frames=args.frames, frame_stride=args.stride,
                                   windows_per_clip=args.windows, face_frame=args.face_frame, seed=args.seed)
        entries = read_manifest(args.captions, args.videos)
        encoders = load_encoders(args.model, args.face_models, device=args.device, dtype=dtype)
        report = prepare_dataset(entries, args.out, encoders, settings)
    except (FileNotFoundError, ValueError) as err:  # missing files / models, bad manifest or settings
        print(f"echovideo prepare-data: {err}", file=sys.stderr)
        return 2
    for video, reason in report.skipped:
        print(f"skipped {video}: {reason}")
    print(f"prepared {report.prepared} clips, reused {report.reused}, skipped {len(report.skipped)}: "
          f"{report.samples} samples in {args.out}")
    return 0
