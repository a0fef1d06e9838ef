"""`echovideo prepare-data`: clips + captions -> the cached training set (resumable)."""
from __future__ import annotations

import argparse
from pathlib import Path

from echovideo_core.commands import check_argument
from echovideo_core.commands.generate import parse_size
from echovideo_core.errors import InvalidInputError
from echovideo_core.paths import check_input_folder, check_output_folder
from echovideo_core.validation import check_num_frames, check_seed, check_size

LATENT_CHANNELS = 16  # the real VAE's (for the room check; the tiny one has fewer)
TEXT_BYTES = 226 * 4096 * 4 + 196 * 1152 * 4 + 512 * 512 * 3  # T5, SigLIP (so400m width at most), identity image


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
    parser.add_argument("--size", type=parse_size, default=(480, 848), help="training HxW (height x width), default 480x848")
    parser.add_argument("--frames", type=int, default=49, help="frames per window, 4k+1 (default 49)")
    parser.add_argument("--stride", type=int, default=1, help="take every STRIDE-th source frame (default 1)")
    parser.add_argument("--windows", type=int, default=1, help="non-overlapping windows per clip (default 1)")
    parser.add_argument("--face-frame", choices=("first", "middle"), default="middle",
                        help="frame of the first window used for the face when no photo is given")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cached latent samples")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="T5 and SigLIP dtype (bfloat16 halves T5-XXL's ~19 GB; the VAE stays float32)")
    parser.add_argument("--device", default=None, help="device for the encoders (default: cuda when available)")
    parser.set_defaults(run=run)


def shard_bytes(args: argparse.Namespace) -> int:
    """Room one clip's shard needs with the real model (float32 latents of every window)."""
    height, width = args.size
    latent_frames = (args.frames - 1) // 4 + 1
    return args.windows * (latent_frames + 1) * LATENT_CHANNELS * (height // 8) * (width // 8) * 4 + TEXT_BYTES


def run(args: argparse.Namespace) -> int:
    check_argument("--size", check_size, *args.size)
    check_argument("--frames", lambda n: check_num_frames(n, allow_long_video=True), args.frames)
    check_argument("--seed", check_seed, args.seed)
    for flag, value in (("--stride", args.stride), ("--windows", args.windows)):
        if value < 1:
            raise InvalidInputError(f"{flag} must be >= 1, got {value}")
    check_input_folder(args.videos, "--videos")
    check_input_folder(args.model, "--model")
    check_input_folder(args.face_models, "--face-models")

    from echovideo_core.training.prepare import PrepareSettings, read_manifest

    entries = read_manifest(args.captions, args.videos)
    check_output_folder(args.out, "--out", expected_bytes=len(entries) * shard_bytes(args))
    height, width = args.size
    settings = PrepareSettings(height=height, width=width, num_frames=args.frames, frame_stride=args.stride,
                               windows_per_clip=args.windows, face_frame=args.face_frame, seed=args.seed)

    import torch

    from echovideo_core.commands.generate import pick_device
    from echovideo_core.training.prepare import load_encoders, prepare_dataset

    device = pick_device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    encoders = load_encoders(args.model, args.face_models, device=device, dtype=dtype)
    report = prepare_dataset(entries, args.out, encoders, settings, progress=True)
    skipped = f" (each named above and in {args.out / 'index.json'})" if report.skipped else ""
    print(f"prepared {report.prepared} clips, reused {report.reused}, skipped {len(report.skipped)}{skipped}: "
          f"{report.samples} samples in {args.out}")
    return 0
