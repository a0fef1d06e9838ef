"""`echovideo generate`: face photo + prompt -> mp4, with a progress bar and a summary line.

Face preparation comes from `echovideo_core.face` (`--face PHOTO`, face models in the model
folder's `face_encoder/` or `--face-models`); an already prepared identity image and ArcFace
vector can be given instead (`--identity-image PNG --arcface NPY`, as `echovideo face`
writes them). Every argument, input file and output path is checked before anything is
loaded: a mistake ends in one line naming the argument or file.
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from echovideo_core.acceleration.cli_options import add_mag_ratio_options, add_speed_options, speed_options
from echovideo_core.commands import check_argument
from echovideo_core.dtypes import DTYPE_NAMES
from echovideo_core.errors import InvalidInputError, OutputExistsError
from echovideo_core.numerics import CFG_SCHEDULES, FEATURE_ROUNDINGS, MODES
from echovideo_core.paths import check_input_file, check_input_folder, check_output_file, check_output_folder
from echovideo_core.validation import (MAX_FPS, MAX_STEPS, OFFLOAD_HELP, SCHEDULER_NAMES, check_finite, check_fps,
                                       check_guidance, check_num_frames, check_seed, check_size, check_steps,
                                       parse_offload)

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DIRS = ("models/echovideo",)
RELEASE_SETTINGS = {"size": (480, 848), "frames": 49, "steps": 50}


def parse_size(text: str) -> tuple[int, int]:
    """'480x848' -> (480, 848): height x width in pixels."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 480x848 (height x width), got {text!r}") from None
    return height, width


def default_model_dir() -> Path:
    """$ECHOVIDEO_MODEL_DIR, else ./models/echovideo."""
    return Path(os.environ.get("ECHOVIDEO_MODEL_DIR") or DEFAULT_MODEL_DIRS[0])


def add_generation_options(parser: argparse.ArgumentParser, *, size_defaults: str | None = None) -> None:
    """Options shared by `generate` and `demo`. `size_defaults` replaces the release's defaults
    of --size / --frames / --steps in the help (demo picks them by model); they are then None."""
    defaults = {} if size_defaults else RELEASE_SETTINGS
    said = size_defaults or "default 480x848, 49 frames, 50 steps"
    parser.add_argument("--seed", type=int, default=42, help="random seed, 0 to 2**64-1 (default 42)")
    parser.add_argument("--steps", type=int, default=defaults.get("steps"),
                        help=f"denoising steps, 1 to {MAX_STEPS} ({said})")
    parser.add_argument("--guidance", type=float, default=6.0, help="CFG scale (default 6.0)")
    parser.add_argument("--no-dynamic-cfg", action="store_true", help="same as --cfg-schedule constant")
    parser.add_argument("--size", type=parse_size, default=defaults.get("size"),
                        help=f"HxW (height x width), multiples of 16 ({said})")
    parser.add_argument("--frames", type=int, default=defaults.get("frames"), help=f"4k+1 frames, at most 49 ({said})")
    parser.add_argument("--mode", choices=MODES, default="as_released",
                        help="preset of the two switches below. as_released: the release's numbers, quirks included "
                             "(bfloat16 feature rounding, timestep CFG schedule); corrected: float32, step_index")
    parser.add_argument("--feature-rounding", choices=FEATURE_ROUNDINGS, default=None,
                        help="bfloat16: round SigLIP pixels and ArcFace to bfloat16 as released; float32: no rounding")
    parser.add_argument("--cfg-schedule", choices=CFG_SCHEDULES, default=None,
                        help="timestep: the release's dynamic CFG at the timestep value; step_index: at the step "
                             "index (smooth ramp); constant: --guidance at every step")
    parser.add_argument("--scheduler", choices=SCHEDULER_NAMES, default="dpm",
                        help="dpm: the release's CogVideoX DPM sampler (default); ddim: CogVideoX DDIM")
    parser.add_argument("--negative-prompt", default=None, help='negative prompt (default "")')
    parser.add_argument("--identity-strength", type=float, default=1.0,
                        help="scale of the face's share of the fused tokens: 1 = as released (default), 0 = text only, "
                             ">1 stronger identity")
    parser.add_argument("--identity-steps", type=_identity_steps, default=None, metavar="A:B",
                        help="timesteps (0..1000) where the face conditioning applies, e.g. 0:600 keeps it out of "
                             "the first, layout-setting steps (default: all)")
    parser.add_argument("--identity-guidance", type=float, default=None, metavar="G",
                        help="separate identity guidance scale: a third, text-only branch per step (1.5x the time); "
                             "v = uncond + g (text - uncond) + G (face - text)")
    parser.add_argument("--dtype", choices=DTYPE_NAMES, default=None,
                        help="model dtype (default bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--decode-dtype", choices=DTYPE_NAMES, default=None,
                        help="VAE decode dtype (default float16 on CUDA as released, float32 on CPU)")
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    parser.add_argument("--fps", type=int, default=16, help=f"frames per second of the mp4, 1 to {MAX_FPS} (default 16)")
    parser.add_argument("--png-dir", type=Path, default=None, help="also write the frames as PNGs here")
    parser.add_argument("--overwrite", action="store_true", help="replace --out (and --png-dir frames) if they exist")
    parser.add_argument("--lora", type=Path, action="append", default=[],
                        help="LoRA .safetensors to merge into the transformer (repeatable)")
    parser.add_argument("--lora-strength", type=float, action="append", default=[],
                        help="strength of each --lora, in order (default 1.0)")
    parser.add_argument("--save-latents", type=Path, default=None,
                        help="also write the final latents (1, F', C, H/8, W/8) float32 as .npy")
    add_speed_options(parser)
    add_mag_ratio_options(parser)
    add_memory_options(parser)


def add_memory_options(parser: argparse.ArgumentParser, *, free_encoders: bool = True) -> None:
    """Where weights wait and how the VAE decodes: less GPU memory, the same numbers.
    `free_encoders`: offer --free-encoders (not in bench, which reuses one pipeline per size)."""
    group = parser.add_argument_group("memory")
    group.add_argument("--offload", type=_offload, default="none", metavar="none|model|blocks:N|sequential",
                       help=OFFLOAD_HELP + " (default none)")
    group.add_argument("--vae-tiling", action="store_true",
                       help="decode in spatial tiles: far less memory at 480x848 and above, slightly slower")
    group.add_argument("--vae-slicing", action="store_true", help="decode one video of a batch at a time")
    group.add_argument("--weights", default=None, metavar="FORMAT",
                       help="how the DiT's weights are stored: bf16/fp16/fp32 (--dtype's), fp8 (e4m3 + per-tensor "
                            "scale, ~half of bf16), int8 (weight-only, torchao: pip install torchao), gguf (a .gguf "
                            "file's blocks as stored), gguf-q8_0/q5_k/q4_k (quantised while loading; Q4_K ~0.35x "
                            "of bf16). Low-bit formats compute in bf16 (or --dtype) and change the numbers a little "
                            "(docs/weights.md)")
    group.add_argument("--transformer-file", type=Path, default=None, metavar="FILE",
                       help="a DiT file to use instead of the model folder's transformer/ (.gguf or .safetensors, "
                            "e.g. from `echovideo convert`)")
    group.add_argument("--t5-weights", default=None, metavar="FORMAT",
                       help="store T5's encoder blocks as fp8 or int8 (about 9.5 GB -> 5 GB)")
    if free_encoders:
        group.add_argument("--free-encoders", action="store_true",
                           help="drop T5 and SigLIP once the prompt and the face are encoded, before denoising "
                                "(the face models are always dropped after face preparation)")


def _offload(text: str) -> str:
    try:
        parse_offload(text)
    except InvalidInputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _identity_steps(text: str) -> tuple[int, int]:
    from echovideo_core.identity import parse_identity_steps  # torch: only when the flag is given

    try:
        return parse_identity_steps(text)
    except InvalidInputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="generate a video of the person in a face photo",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None,
                        help="EchoVideo model folder (default $ECHOVIDEO_MODEL_DIR or ./models/echovideo)")
    parser.add_argument("--face", type=Path, default=None, help="face photo (prepared with the face models)")
    parser.add_argument("--face-models", type=Path, default=None, help="face models folder (default MODEL/face_encoder)")
    parser.add_argument("--allow-no-face", action="store_true",
                        help="with --face: use the whole photo when no face is found instead of failing")
    parser.add_argument("--identity-image", type=Path, default=None, help="prepared identity image (PNG), instead of --face")
    parser.add_argument("--arcface", type=Path, default=None, help="raw ArcFace vector (.npy, 512 values), with --identity-image")
    parser.add_argument("--prompt", required=True, help="what the person does")
    parser.add_argument("--out", type=Path, required=True, help="output .mp4")
    add_generation_options(parser)
    parser.set_defaults(run=run)


# ---- checks, before anything is loaded -----------------------------------------------------

def lora_pairs(args: argparse.Namespace) -> list[tuple[Path, float]]:
    """--lora / --lora-strength as (path, strength) pairs; a missing strength is 1.0."""
    if len(args.lora_strength) > len(args.lora):
        raise InvalidInputError(f"--lora-strength: {len(args.lora_strength)} values for {len(args.lora)} --lora files")
    strengths = list(args.lora_strength) + [1.0] * (len(args.lora) - len(args.lora_strength))
    return list(zip(args.lora, strengths))


def check_generation_args(args: argparse.Namespace) -> None:
    """Every value (validation.py's rules, the flag named in the message): no import, no I/O."""
    check_argument("--size", check_size, *args.size)
    check_argument("--frames", check_num_frames, args.frames)
    check_argument("--steps", check_steps, args.steps)
    check_argument("--guidance", check_guidance, args.guidance)
    check_argument("--fps", check_fps, args.fps)
    check_argument("--seed", check_seed, args.seed)
    for strength in args.lora_strength:
        check_argument("--lora-strength", check_finite, "a LoRA strength", strength)
    lora_pairs(args)
    if args.identity_guidance is not None and "cfg" in speed_options(args).parallel:
        raise InvalidInputError("--identity-guidance adds a third guidance branch, which --parallel cfg cannot "
                                "split over two ranks: use --parallel ulysses or drop --identity-guidance")


def check_weight_formats(args: argparse.Namespace) -> None:
    """--weights / --t5-weights by weights.formats' vocabulary (imported here: it needs torch),
    and --transformer-file."""
    from echovideo_core.weights.formats import (GGUF_SUFFIX, T5_WEIGHTS, TRANSFORMER_WEIGHTS, require_low_bit_packages,
                                                weights_format)

    for flag, value, valid in (("--weights", args.weights, TRANSFORMER_WEIGHTS), ("--t5-weights", args.t5_weights,
                                                                                   T5_WEIGHTS)):
        if value is not None:
            check_argument(flag, lambda name: weights_format(name, valid=valid, what="format"), value)
    if args.transformer_file is not None:
        check_input_file(args.transformer_file, "--transformer-file")
    gguf_file = args.transformer_file is not None and args.transformer_file.suffix.lower() == GGUF_SUFFIX
    require_low_bit_packages(args.weights, gguf_file=gguf_file)
    require_low_bit_packages(args.t5_weights)


def check_identity_controls(args: argparse.Namespace) -> None:
    """--identity-strength / --identity-guidance by identity.py's rules (--identity-steps is
    checked while parsing)."""
    from echovideo_core.identity import IdentityControls

    check_argument("--identity-strength", lambda value: IdentityControls(strength=value), args.identity_strength)
    check_argument("--identity-guidance", lambda value: IdentityControls(guidance=value), args.identity_guidance)


def video_bytes(args: argparse.Namespace) -> int:
    """Room the outputs need, as an upper bound: the raw frames (an H.264 file of them is
    smaller; PNG frames of noise are about as large), twice with --png-dir."""
    height, width = args.size
    return height * width * 3 * args.frames * (2 if args.png_dir else 1)


def check_generation_paths(args: argparse.Namespace, *, create_parents: bool = False) -> None:
    """--out, --png-dir and --lora: exists / is a folder / writable / room; files readable."""
    check_output_file(args.out, "--out", overwrite=args.overwrite, expected_bytes=video_bytes(args),
                      create_parents=create_parents)
    if getattr(args, "save_latents", None) is not None:
        check_output_file(args.save_latents, "--save-latents", overwrite=args.overwrite, create_parents=create_parents)
    if args.png_dir is not None:
        check_output_folder(args.png_dir, "--png-dir")
        if not args.overwrite and args.png_dir.is_dir() and any(args.png_dir.glob("frame_*.png")):
            raise OutputExistsError(f"--png-dir {args.png_dir} holds frame_*.png files already; pass --overwrite "
                                    "to replace them, or choose another folder", path=args.png_dir)
    for lora in args.lora:
        check_input_file(lora, "--lora")
    check_mag_ratio_files(args, create_parents=create_parents)


def check_mag_ratio_files(args: argparse.Namespace, *, create_parents: bool = False) -> None:
    """--mag-ratios is read now (a bad file fails before loading) and kept as args.mag_ratio_values;
    --record-mag-ratios needs an uncached single-process batched run (one ratio per step)."""
    from echovideo_core.acceleration.mag_ratios import read_mag_ratios

    options = speed_options(args)
    args.mag_ratio_values = None
    if args.mag_ratios is not None:
        if options.cache.kind != "magcache":
            raise InvalidInputError(f"--mag-ratios feeds --cache magcache, but --cache is {options.cache}: add "
                                    "--cache magcache or drop --mag-ratios")
        args.mag_ratio_values = read_mag_ratios(args.mag_ratios)
    if args.record_mag_ratios is not None:
        if options.cache.enabled or options.guidance_branches != "batched" or options.parallel != "none":
            raise InvalidInputError("--record-mag-ratios measures an uncached run with batched guidance branches in "
                                    "one process: drop --cache, --guidance-branches and --parallel")
        check_output_file(args.record_mag_ratios, "--record-mag-ratios", overwrite=args.overwrite,
                          create_parents=create_parents)


def check_identity_args(args: argparse.Namespace) -> None:
    """--face PHOTO, or --identity-image with --arcface."""
    if args.identity_image is not None or args.arcface is not None:
        if args.identity_image is None or args.arcface is None:
            raise InvalidInputError("--identity-image and --arcface go together (both are written by `echovideo face`)")
        check_input_file(args.identity_image, "--identity-image")
        check_input_file(args.arcface, "--arcface")
    elif args.face is None:
        raise InvalidInputError("give --face PHOTO (or --identity-image PNG with --arcface NPY)")
    else:
        check_input_file(args.face, "--face")


def pick_device(name: str | None):
    """--device as a torch device; InvalidInputError for a name torch does not know or a GPU
    this machine does not have."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise InvalidInputError(f"--device {name!r} is not a device ({err}); use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def check_model_files(args: argparse.Namespace, model_dir: Path) -> None:
    """The model folder's layout and each LoRA's header (cheap reads, before the loads)."""
    from echovideo_core.loading.components import RELEASED_FOLDERS, check_released_folder
    from echovideo_core.loading.state_dict import read_metadata

    check_input_folder(model_dir, "--model")
    check_released_folder(model_dir, list(RELEASED_FOLDERS))
    for lora in args.lora:
        read_metadata(lora)  # a garbage or truncated file fails here, naming it


# ---- the run ----------------------------------------------------------------------------------

def load_identity(args: argparse.Namespace, model_dir: Path):
    """(identity image (H, W, 3) uint8, raw ArcFace (512,)) from --face or the prepared pair.
    The face's notes are logged once, by face preparation."""
    if args.face is None:
        from echovideo_core.face.image import read_identity_image
        from echovideo_core.face_features import check_identity_image, read_arcface_file

        image = read_identity_image(args.identity_image, "--identity-image")
        check_argument(f"--identity-image {args.identity_image}", check_identity_image, image)
        return image, read_arcface_file(args.arcface, "--arcface")
    from echovideo_core.face import FacePreparer
    from echovideo_core.face.image import load_rgb

    photo = load_rgb(args.face)  # a broken photo fails before the face models load
    face_models = args.face_models or model_dir / "face_encoder"
    check_input_folder(face_models, "--face-models")
    result = FacePreparer(face_models, allow_no_face=args.allow_no_face).prepare(photo)
    return result.identity_image, result.arcface


def generate_video(args: argparse.Namespace, model_dir: Path, identity, arcface) -> str:
    """Load, generate, save; returns the one-line summary (size as HxW, as --size takes it),
    or "" on a process that writes nothing (the ranks of a --parallel run but rank 0)."""
    import numpy as np
    from contextlib import ExitStack

    import transformers
    from tqdm import tqdm

    from echovideo_core.acceleration import accelerated, check_speed_options
    from echovideo_core.acceleration.cache import record_mag_ratios
    from echovideo_core.acceleration.mag_ratios import write_mag_ratios
    from echovideo_core.acceleration.parallel import check_sequence_split_for, parallel_run
    from echovideo_core.atomic import atomic_path
    from echovideo_core.dtypes import dtype_from_name
    from echovideo_core.io import save_video
    from echovideo_core.pipeline import EchoVideoPipeline
    from echovideo_core.stages import seeded_generator

    transformers.utils.logging.disable_progress_bar()  # one progress bar: ours
    options = speed_options(args)
    device = pick_device(args.device)
    cuda = device.type == "cuda"
    dtype = dtype_from_name(args.dtype or ("bf16" if cuda else "fp32"), what="--dtype")
    decode_dtype = dtype_from_name(args.decode_dtype or ("fp16" if cuda else "fp32"), what="--decode-dtype")
    start = time.perf_counter()
    height, width = args.size
    with parallel_run(options.parallel, device) as setup:
        device = setup.device if setup.mode != "none" else device
        check_speed_options(options, device, setup, mag_ratios=args.mag_ratio_values)
        pipe = EchoVideoPipeline.from_pretrained(model_dir, torch_dtype=dtype, device=device, offload=args.offload,
                                                 weights=args.weights, transformer_file=args.transformer_file,
                                                 text_encoder_weights=args.t5_weights)
        check_sequence_split_for(pipe.transformer.config, setup, height=height, width=width, num_frames=args.frames)
        for lora, strength in lora_pairs(args):
            pipe.apply_lora(lora, strength)
        with ExitStack() as stack:
            speed = stack.enter_context(accelerated(pipe.transformer, options, num_inference_steps=args.steps,
                                                    parallel=setup, mag_ratios=args.mag_ratio_values))
            ratios = stack.enter_context(record_mag_ratios(pipe.transformer)) if args.record_mag_ratios else None
            bar = stack.enter_context(tqdm(total=args.steps, desc="denoising", unit="step",
                                           disable=not setup.writes_outputs))
            out = pipe(identity, arcface, args.prompt, negative_prompt=args.negative_prompt, height=height,
                       width=width, num_frames=args.frames, num_inference_steps=args.steps,
                       guidance_scale=args.guidance, use_dynamic_cfg=not args.no_dynamic_cfg,
                       feature_rounding=args.feature_rounding, cfg_schedule=args.cfg_schedule,
                       scheduler=args.scheduler, identity_strength=args.identity_strength,
                       identity_steps=args.identity_steps, identity_guidance=args.identity_guidance,
                       vae_tiling=args.vae_tiling, vae_slicing=args.vae_slicing,
                       generator=seeded_generator(args.seed), mode=args.mode,
                       decode_dtype=decode_dtype, callback=lambda step, total, latents: bar.update(1),
                       output_type="np" if setup.writes_outputs else "latent", model_call=speed.model_call,
                       free_encoders=args.free_encoders)
    if not setup.writes_outputs:
        return ""
    frames = out.frames[0]
    save_video(frames, args.out, fps=args.fps, overwrite=args.overwrite, png_dir=args.png_dir)
    if ratios is not None:
        write_mag_ratios(args.record_mag_ratios, ratios, steps=args.steps)
    if args.save_latents is not None:
        with atomic_path(args.save_latents) as tmp, open(tmp, "wb") as handle:
            np.save(handle, out.latents.numpy())
    seconds = time.perf_counter() - start
    return (f"wrote {args.out}: {frames.shape[0]} frames {frames.shape[1]}x{frames.shape[2]} (HxW) at {args.fps} "
            f"fps, seed {args.seed}, {args.steps} steps, {args.mode}, {options.label()}, "
            f"{speed.block_evaluations} block evaluations, {seconds:.1f} s")


def run(args: argparse.Namespace) -> int:
    check_generation_args(args)
    check_generation_paths(args)
    check_identity_args(args)
    check_identity_controls(args)
    check_weight_formats(args)
    model_dir = args.model or default_model_dir()
    check_model_files(args, model_dir)
    pick_device(args.device)
    identity, arcface = load_identity(args, model_dir)
    summary = generate_video(args, model_dir, identity, arcface)
    if summary:  # only the process that wrote the outputs reports
        print(summary)
    return 0
