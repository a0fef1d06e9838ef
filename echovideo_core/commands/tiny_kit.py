"""`echovideo tiny-kit --comfy-models DIR`: the tiny model kit in a ComfyUI `models/` tree.

Every file goes where the shipped workflows (`workflows/api/*.json`) look for it, under the
same names, so each workflow runs unchanged against the kit on a CPU (with
`--extra-model-paths-config`, or as ComfyUI's own models folder). All weights are random
(seeded): the videos are noise; the kit proves the plumbing, not the model.

    DIR/echovideo/EchoVideo/            the released folder layout (tiny): transformer/, vae/,
        text_encoder/, tokenizer/, scheduler/, clip_visual_encoder/, face_encoder/
        (models/antelopev2/*.onnx, parsing_bisenet.pth, detection_Resnet50_Final.pth)
    DIR/text_encoders/t5xxl_fp16.safetensors   a tiny T5 in ComfyUI's single-file layout
        (vocabulary of the real T5, so ComfyUI's bundled tokenizer fits it)
    DIR/insightface/models/antelopev2/*.onnx   tiny SCRFD (a magenta-marker detector) + ArcFace
    DIR/facexlib/parsing_bisenet.pth, detection_Resnet50_Final.pth
The RetinaFace weights fire on every photo, so any portrait goes through the reported
RetinaFace fallback (the tiny SCRFD only detects magenta markers).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

MODEL_NAME = "EchoVideo"
T5_FILE = "t5xxl_fp16.safetensors"
T5_VOCAB = 32128  # the real T5's embedding rows (32100 pieces + padding)
NOTE = "Tiny random-weight EchoVideo kit written by `echovideo tiny-kit`: outputs are noise, for tests only.\n"


KIT_BYTES = 330 * 2**20
"""Room the kit needs: about 316 MB, most of it the parser and RetinaFace (full-size
architectures with random weights), each written twice (facexlib/ and face_encoder/)."""


def kit_files(models_dir: Path) -> list[Path]:
    """The kit's top-level targets, checked before anything is written."""
    return [models_dir / "echovideo" / MODEL_NAME, models_dir / "text_encoders" / T5_FILE,
            models_dir / "insightface" / "models" / "antelopev2", models_dir / "facexlib" / "parsing_bisenet.pth",
            models_dir / "facexlib" / "detection_Resnet50_Final.pth"]


def check_kit_target(models_dir: str | Path, *, overwrite: bool = False, argument: str | None = None) -> Path:
    """The kit may be written into `models_dir`. A ComfyUI models/ folder is never empty, so the
    rule is per file: any file the kit writes that exists already is refused unless
    `overwrite` (and a real model in echovideo/EchoVideo is refused even then)."""
    from echovideo_core.errors import OutputExistsError
    from echovideo_core.paths import check_output_folder, is_empty_folder

    root = check_output_folder(models_dir, argument, expected_bytes=KIT_BYTES)
    taken = [p for p in kit_files(root) if p.exists() and not is_empty_folder(p)]
    if taken and not overwrite:
        raise OutputExistsError(f"{argument + ' ' if argument else ''}{root} holds files the kit would replace "
                                f"({', '.join(str(p.relative_to(root)) for p in taken)}); pass --overwrite to replace "
                                "only those, or choose another folder", path=root)
    if taken:
        from echovideo_core.tiny import check_tiny_model_target

        check_tiny_model_target(root / "echovideo" / MODEL_NAME, overwrite=True)
    return root


def _write_face_models(folder: Path, antelopev2: Path, seed: int) -> None:
    """parser + RetinaFace (confident heads) into `folder`, antelopev2 .onnx into `antelopev2`."""
    from echovideo_core.testing.tiny_face_models import (write_tiny_antelopev2, write_tiny_parser,
                                                         write_tiny_retinaface)

    write_tiny_antelopev2(antelopev2, seed)
    write_tiny_parser(folder / "parsing_bisenet.pth", seed)
    write_tiny_retinaface(folder / "detection_Resnet50_Final.pth", seed, always_fires=True)


def _write_single_file_t5(path: Path, seed: int) -> None:
    """Tiny T5 as ComfyUI stores T5 files: fp16, `shared.weight` + `encoder.*`, no config."""
    import torch
    from safetensors.torch import save_file
    from transformers import T5Config, T5EncoderModel

    from echovideo_core.tiny import TINY_T5

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 2)
        model = T5EncoderModel(T5Config(**{**TINY_T5, "vocab_size": T5_VOCAB}))
    state = {k: v.detach().clone().half().contiguous() for k, v in model.state_dict().items()
             if k != "encoder.embed_tokens.weight"}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))


def write_tiny_kit(models_dir: str | Path, seed: int = 0, *, overwrite: bool = False) -> list[Path]:
    """Write the kit into `models_dir` (a ComfyUI models/ tree); returns the top-level entries.

    Refuses when a file it writes exists (unless `overwrite`); only the kit's own files are
    ever replaced, each by an atomic rename from a staging folder (see atomic.staged_files).
    """
    from echovideo_core.atomic import staged_files
    from echovideo_core.tiny import write_tiny_components

    root = check_kit_target(models_dir, overwrite=overwrite)
    with staged_files(root, overwrite=overwrite) as stage:
        model = stage / "echovideo" / MODEL_NAME
        write_tiny_components(model, seed)
        antelopev2 = stage / "insightface" / "models" / "antelopev2"
        _write_face_models(stage / "facexlib", antelopev2, seed)
        face_encoder = model / "face_encoder"  # the same face models again, in the released layout
        shutil.copytree(antelopev2, face_encoder / "models" / "antelopev2")
        for name in ("parsing_bisenet.pth", "detection_Resnet50_Final.pth"):
            shutil.copyfile(stage / "facexlib" / name, face_encoder / name)
        (model / "TINY_KIT.txt").write_text(NOTE)
        _write_single_file_t5(stage / "text_encoders" / T5_FILE, seed)
    return [root / "echovideo" / MODEL_NAME, root / "text_encoders" / T5_FILE,
            root / "insightface" / "models" / "antelopev2", root / "facexlib"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tiny-kit", help="write the tiny model kit into a ComfyUI models/ folder (random weights, for tests)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--comfy-models", type=Path, required=True, metavar="DIR",
                        help="a ComfyUI models/ folder (created if needed)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace kit files that exist already (only the kit's own files are ever touched)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from echovideo_core.commands import check_argument
    from echovideo_core.validation import check_seed

    check_argument("--seed", check_seed, args.seed)
    check_kit_target(args.comfy_models, overwrite=args.overwrite, argument="--comfy-models")
    written = write_tiny_kit(args.comfy_models, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote the tiny EchoVideo kit (random weights, seed {args.seed}) into {args.comfy_models}: "
          + ", ".join(str(p.relative_to(args.comfy_models)) for p in written))
    return 0
