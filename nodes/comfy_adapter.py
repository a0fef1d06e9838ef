"""The only place that touches ComfyUI (folder_paths, comfy.utils, comfy.model_management,
latent_preview), with plain fallbacks so the nodes also run without ComfyUI (tests, scripts).

Everything is looked up when called, never at import: importing the pack needs no ComfyUI.
Without ComfyUI, model folders come from `$ECHOVIDEO_COMFY_MODELS` (a ComfyUI-style
`models/` tree), progress goes to the `logging` module, and there is no interrupt.

Memory: before one of our models is moved onto the GPU (placement "model_offload"),
`make_room(bytes, device)` asks ComfyUI's model management to unload ComfyUI's
own models until that much is free; after a run `release_cache()` returns cached blocks.
Our models are not registered with ComfyUI's model management, so ComfyUI cannot evict
them by itself: choose "model_offload" on the loaders to keep them on the CPU between uses.
"""
from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Callable

import torch

logger = logging.getLogger(__name__)

MODELS_ENV = "ECHOVIDEO_COMFY_MODELS"
WEIGHT_SUFFIXES = (".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt")
# Folders we add to ComfyUI's model folders (the standard ones are reused as they are).
OWN_FOLDERS = ("echovideo", "insightface", "facexlib")


def _optional(name: str):
    """The ComfyUI module `name`, or None outside ComfyUI (only ImportError means absent)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def register_model_folders() -> None:
    """Add models/echovideo, models/insightface and models/facexlib to ComfyUI's folders."""
    folder_paths = _optional("folder_paths")
    if folder_paths is None:
        return
    for name in OWN_FOLDERS:
        default = os.path.join(folder_paths.models_dir, name)
        paths, extensions = folder_paths.folder_names_and_paths.get(name, ([], set()))
        if default not in paths:
            paths = [default, *paths]
        folder_paths.folder_names_and_paths[name] = (paths, set(extensions) | {*WEIGHT_SUFFIXES, ".onnx"})


def model_dirs(kind: str) -> list[Path]:
    """Every folder of one model kind ("vae", "text_encoders", "echovideo", ...)."""
    folder_paths = _optional("folder_paths")
    if folder_paths is not None:
        try:
            return [Path(p) for p in folder_paths.get_folder_paths(kind)]
        except KeyError:
            return [Path(folder_paths.models_dir) / kind]
    root = os.environ.get(MODELS_ENV)
    if not root:
        return []
    aliases = {"text_encoders": ["text_encoders", "clip"], "diffusion_models": ["diffusion_models", "unet"]}
    return [Path(root) / name for name in aliases.get(kind, [kind])]


def where(kind: str) -> str:
    """The folders of a kind, for error messages."""
    dirs = model_dirs(kind)
    if dirs:
        return " or ".join(str(d) for d in dirs)
    return f"models/{kind} (outside ComfyUI set {MODELS_ENV} to a models/ folder)"


def weight_files(kind: str) -> list[str]:
    """Weight files of a kind, as names relative to their folder (sub-folders with '/')."""
    names: set[str] = set()
    for root in model_dirs(kind):
        if root.is_dir():
            for path in root.rglob("*"):
                if path.suffix in WEIGHT_SUFFIXES and path.is_file():
                    names.add(path.relative_to(root).as_posix())
    return sorted(names)


def subfolders(kind: str, marker: str, depth: int = 2) -> list[str]:
    """Names `a`, `a/b`, ... (up to `depth` levels) of folders under a kind's folders that
    contain `marker` (a relative path)."""
    names: set[str] = set()
    for root in model_dirs(kind):
        if not root.is_dir():
            continue
        for level in range(1, depth + 1):
            for folder in root.glob("/".join(["*"] * level)):
                if (folder / marker).exists():
                    names.add(folder.relative_to(root).as_posix())
    return sorted(names)


def resolve(kind: str, name: str) -> Path | None:
    """The first existing `<folder of kind>/<name>`, or None."""
    for root in model_dirs(kind):
        candidate = root / name
        if candidate.exists():
            return candidate
    return None


def execution_device() -> torch.device:
    model_management = _optional("comfy.model_management")
    if model_management is not None:
        return model_management.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    model_management = _optional("comfy.model_management")
    if model_management is not None:
        return model_management.unet_offload_device()
    return torch.device("cpu")


def make_room(num_bytes: int, device: torch.device) -> None:
    """Ask ComfyUI to unload its models until `num_bytes` (+ 20%) are free on `device`."""
    model_management = _optional("comfy.model_management")
    if model_management is not None and torch.device(device).type != "cpu":
        model_management.free_memory(int(num_bytes * 1.2), torch.device(device))


def release_cache() -> None:
    model_management = _optional("comfy.model_management")
    if model_management is not None:
        model_management.soft_empty_cache()


def check_interrupt() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed Cancel (never caught here)."""
    model_management = _optional("comfy.model_management")
    if model_management is not None:
        model_management.throw_exception_if_processing_interrupted()


def comfy_t5_tokenizer_dir() -> Path | None:
    """ComfyUI's bundled T5 tokenizer (comfy/text_encoders/t5_tokenizer), when present."""
    comfy = _optional("comfy")
    if comfy is None or not getattr(comfy, "__file__", None):
        return None
    folder = Path(comfy.__file__).parent / "text_encoders" / "t5_tokenizer"
    return folder if (folder / "tokenizer.json").is_file() else None


def _preview_maker() -> Callable[[torch.Tensor], object] | None:
    """latents -> ComfyUI preview tuple, or None when previews are off or ComfyUI is absent."""
    latent_preview = _optional("latent_preview")
    cli_args = _optional("comfy.cli_args")
    if latent_preview is None or cli_args is None:
        return None
    if cli_args.args.preview_method == cli_args.LatentPreviewMethod.NoPreviews:
        return None
    from echovideo_core.stages import latent_preview as picture

    size = getattr(latent_preview, "MAX_PREVIEW_RESOLUTION", 512)
    return lambda latents: ("JPEG", latent_preview.preview_to_image(picture(latents).cpu()), size)


def step_callback(total: int) -> Callable[[int, int, torch.Tensor], None]:
    """on_step for the sampling loop: progress bar (+ preview) in ComfyUI, a log line outside;
    checks for the user's Cancel after every step."""
    utils = _optional("comfy.utils")
    bar = utils.ProgressBar(total) if utils is not None else None
    logger.info("EchoVideo sampling: %d steps", total)
    preview = _preview_maker() if bar is not None else None

    def on_step(step: int, steps: int, latents: torch.Tensor) -> None:
        if bar is not None:
            bar.update_absolute(step + 1, steps, preview(latents) if preview else None)
        else:
            logger.info("EchoVideo sampling: step %d/%d", step + 1, steps)
        check_interrupt()

    return on_step


def placement(mode: str):
    """A core Placement for a loader's `placement` widget, on ComfyUI's devices."""
    from echovideo_core.components import Placement

    return Placement.create(mode, execution_device(), offload_device())
