"""Loader widget choices (what is installed) and their resolution to paths, with clear errors.

Where each model may live (ComfyUI `models/` folders):
- EchoVideo model: a released folder `echovideo/<name>/` (transformer/, vae/, text_encoder/,
  tokenizer/, scheduler/, clip_visual_encoder/, face_encoder/) or a single transformer file
  in `diffusion_models/`;
- VAE: the model folder's vae/, a CogVideoX VAE file in `vae/`;
- T5: the model folder's text_encoder/ + tokenizer/, or a file in `text_encoders/`
  (t5xxl_fp16.safetensors, fp8 variants; tokenizer from ComfyUI's bundled T5 tokenizer);
- antelopev2: `insightface/models/antelopev2/` or the model folder's face_encoder/;
- parser (+ RetinaFace beside it): `facexlib/` or the model folder's face_encoder/;
- SigLIP: the model folder's clip_visual_encoder/ or a HF folder in `clip_vision/`.
Face-model choices are labelled `<models folder kind>/<path>` because they span kinds.
"""
from __future__ import annotations

from pathlib import Path

from echovideo_core.errors import MissingModelFilesError

from . import comfy_adapter as comfy

FROM_MODEL_FOLDER = "(from model folder)"
NONE_FOUND = "(none found)"
ANTELOPEV2 = ("scrfd_10g_bnkps.onnx", "glintr100.onnx")
PARSER_NAMES = ("parsing_bisenet.pth", "parsing_bisenet.safetensors")
RETINAFACE_NAMES = ("detection_Resnet50_Final.pth", "detection_Resnet50_Final.safetensors")


def _or_placeholder(values: list[str]) -> list[str]:
    return values or [NONE_FOUND]


def transformer_choices() -> list[str]:
    return _or_placeholder(comfy.subfolders("echovideo", "transformer") + comfy.weight_files("diffusion_models"))


def transformer_path(name: str) -> Path:
    """A released folder in models/echovideo/ or a file in models/diffusion_models/."""
    found = comfy.resolve("echovideo", name) or comfy.resolve("diffusion_models", name)
    if found is None or name == NONE_FOUND:
        raise MissingModelFilesError(
            f"EchoVideo model {name!r} not found. Put the released folder in {comfy.where('echovideo')}/<name>/ "
            "(transformer/, vae/, text_encoder/, tokenizer/, scheduler/, clip_visual_encoder/, face_encoder/) "
            f"or a single transformer .safetensors in {comfy.where('diffusion_models')} "
            f"(now {comfy.present('echovideo')}; {comfy.present('diffusion_models')})"
        )
    return found


NO_LORA = "none"


def lora_choices() -> list[str]:
    return [NO_LORA] + comfy.weight_files("loras")


def lora_pairs(name: str, strength: float) -> list[tuple[Path, float]]:
    """[(file, strength)] for the loader, [] for "none"."""
    if name == NO_LORA:
        return []
    found = comfy.resolve("loras", name)
    if found is None:
        raise MissingModelFilesError(f"LoRA {name!r} not found in {comfy.where('loras')} ({comfy.present('loras')})")
    return [(found, float(strength))]


def vae_choices() -> list[str]:
    return [FROM_MODEL_FOLDER] + comfy.weight_files("vae") + comfy.subfolders("vae", "config.json")


def vae_path(name: str) -> Path | None:
    """None means: the model folder's vae/."""
    if name == FROM_MODEL_FOLDER:
        return None
    found = comfy.resolve("vae", name)
    if found is None:
        raise MissingModelFilesError(f"VAE {name!r} not found: add a CogVideoX VAE .safetensors to {comfy.where('vae')} "
                                     f"({comfy.present('vae')})")
    return found


def text_encoder_choices() -> list[str]:
    return _or_placeholder(comfy.subfolders("echovideo", "text_encoder") + comfy.weight_files("text_encoders"))


def text_encoder_paths(name: str) -> tuple[Path, Path | None]:
    """(T5 source, tokenizer folder or None for the model folder's own tokenizer/)."""
    folder = comfy.resolve("echovideo", name)
    if folder is not None and name != NONE_FOUND:
        return folder, None
    found = comfy.resolve("text_encoders", name)
    if found is None or name == NONE_FOUND:
        raise MissingModelFilesError(
            f"T5 text encoder {name!r} not found: put t5xxl_fp16.safetensors (or an fp8 variant) in "
            f"{comfy.where('text_encoders')}, or the released folder (text_encoder/ + tokenizer/) in "
            f"{comfy.where('echovideo')}/<name>/ (now {comfy.present('text_encoders')})"
        )
    tokenizer = comfy.comfy_t5_tokenizer_dir()
    if tokenizer is None:
        folders = comfy.subfolders("echovideo", "tokenizer/spiece.model")
        tokenizer = comfy.resolve("echovideo", f"{folders[0]}/tokenizer") if folders else None
    if tokenizer is None:
        raise MissingModelFilesError(
            f"no T5 tokenizer for {found}: expected ComfyUI's comfy/text_encoders/t5_tokenizer/ or a released "
            f"folder with tokenizer/spiece.model in {comfy.where('echovideo')}"
        )
    return found, tokenizer


def _labelled(kind: str, relative: list[str]) -> list[str]:
    return [f"{kind}/{r}" for r in relative]


def antelopev2_choices() -> list[str]:
    """Folders holding the antelopev2 .onnx files (any nesting, e.g. antelopev2/antelopev2/)."""
    marker = ANTELOPEV2[0]
    return _or_placeholder(_labelled("insightface", comfy.subfolders("insightface", marker, depth=3))
                           + _labelled("echovideo", comfy.subfolders("echovideo", marker, depth=4)))


def parser_choices() -> list[str]:
    files = []
    for kind in ("facexlib", "echovideo"):
        files += [f"{kind}/{f}" for f in comfy.weight_files(kind) if Path(f).name in PARSER_NAMES]
    return _or_placeholder(files)


def siglip_choices() -> list[str]:
    return _or_placeholder(_labelled("echovideo", comfy.subfolders("echovideo", "clip_visual_encoder"))
                           + _labelled("clip_vision", comfy.subfolders("clip_vision", "preprocessor_config.json")))


def labelled_path(label: str, what: str, expected: str, home: str) -> Path:
    """`<kind>/<relative path>` -> the path; MissingModelFilesError naming the folders otherwise
    (`home`: the models folder kind where this file usually lives)."""
    kind, _, relative = label.partition("/")
    found = comfy.resolve(kind, relative) if relative and label != NONE_FOUND else None
    if found is None:
        raise MissingModelFilesError(
            f"{what} {label!r} not found: add {expected} to {comfy.where(home)} "
            f"(or the released folder to {comfy.where('echovideo')}/<name>/); now {comfy.present(home)}"
        )
    return found


def antelopev2_path(label: str) -> Path:
    return labelled_path(label, "insightface antelopev2", f"models/antelopev2/{' + '.join(ANTELOPEV2)}", "insightface")


def parser_path(label: str) -> Path:
    return labelled_path(label, "face parser", f"{PARSER_NAMES[0]} (+ {RETINAFACE_NAMES[0]} for the fallback)", "facexlib")


def siglip_path(label: str) -> Path:
    return labelled_path(label, "SigLIP", "a folder with config.json, preprocessor_config.json and model.safetensors",
                         "clip_vision")


def retinaface_beside(parser: Path) -> Path | None:
    """RetinaFace (fallback detector) in the parser's folder, or None (fallback off)."""
    return next((parser.parent / n for n in RETINAFACE_NAMES if (parser.parent / n).is_file()), None)
