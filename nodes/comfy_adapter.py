"""The only place that touches ComfyUI (folder_paths, comfy.utils, comfy.model_management,
latent_preview), with plain fallbacks so the nodes also run without ComfyUI (tests, scripts).

Everything is looked up when called, never at import: importing the pack needs no ComfyUI.
Without ComfyUI, model folders come from `$ECHOVIDEO_COMFY_MODELS` (a ComfyUI-style
`models/` tree), progress goes to the `logging` module, and there is no interrupt.

Memory: inside ComfyUI every model we run (DiT, VAE, T5, SigLIP) is registered with ComfyUI's
model management (`ComfyModels`): each is wrapped in a `comfy.model_patcher.ModelPatcher` and
loaded with `comfy.model_management.load_models_gpu` before it runs, so it sits in ComfyUI's
list of loaded models and ComfyUI unloads it to the offload device like its own models when
another model needs the memory or the user frees memory (POST /free, "Unload models").
"main_device" models stay loaded after use until ComfyUI needs the room; "model_offload"
ones are unloaded again right after use. A DiT with "sequential_offload" is not registered:
its layers move one at a time by themselves. Without ComfyUI, `make_room` + `running_on`
move the models (core behaviour); after a run `release_cache()` returns cached blocks.
"""
from __future__ import annotations

import importlib
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

logger = logging.getLogger(__name__)

MODELS_ENV = "ECHOVIDEO_COMFY_MODELS"
WEIGHT_SUFFIXES = (".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt", ".gguf")
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


def present(kind: str) -> str:
    """What the folders of a kind hold, for a missing-model message."""
    from echovideo_core.errors import folder_contents

    dirs = model_dirs(kind)
    if not dirs:
        return f"no models/{kind} folder is known (outside ComfyUI set {MODELS_ENV})"
    return "; ".join(f"{d}: {folder_contents(d) if d.is_dir() else 'it does not exist'}" for d in dirs)


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


def valid_choice(parse: Callable[[str], str], value: str) -> bool | str:
    """For a node's VALIDATE_INPUTS: True when `parse` (a core vocabulary reader that also
    accepts older spellings) takes `value`, else its message (ComfyUI shows it)."""
    from echovideo_core.errors import InvalidInputError

    try:
        parse(value)
    except InvalidInputError as err:
        return str(err)
    return True


def comfy_t5_tokenizer_dir() -> Path | None:
    """ComfyUI's bundled T5 tokenizer (comfy/text_encoders/t5_tokenizer), when present."""
    comfy = _optional("comfy")
    if comfy is None or not getattr(comfy, "__file__", None):
        return None
    folder = Path(comfy.__file__).parent / "text_encoders" / "t5_tokenizer"
    return folder if (folder / "tokenizer.json").is_file() else None


def _preview_maker() -> Callable[[torch.Tensor], object] | None:
    """latents -> ComfyUI preview tuple, or None when previews are off or ComfyUI is absent.

    Never able to stop a run or the server: the picture is checked to be an RGB image before
    it goes to ComfyUI (which JPEG-encodes it in its event loop), and the first failure turns
    previews off for the rest of the run with one warning."""
    latent_preview = _optional("latent_preview")
    cli_args = _optional("comfy.cli_args")
    if latent_preview is None or cli_args is None:
        return None
    if cli_args.args.preview_method == cli_args.LatentPreviewMethod.NoPreviews:
        return None
    from echovideo_core.interchange import latent_preview as picture

    size = getattr(latent_preview, "MAX_PREVIEW_RESOLUTION", 512)
    failed: list[str] = []

    def make(latents: torch.Tensor):
        if failed:
            return None
        try:
            rgb = picture(latents).cpu()
            if rgb.ndim != 3 or rgb.shape[-1] != 3 or min(rgb.shape[:2]) < 1:
                raise ValueError(f"preview picture of shape {tuple(rgb.shape)} is not (h, w, 3)")
            image = latent_preview.preview_to_image(rgb)
            if getattr(image, "mode", "RGB") != "RGB":
                raise ValueError(f"preview image mode {image.mode} is not RGB")
            return ("JPEG", image, size)
        except Exception as err:  # noqa: BLE001 - a preview must never end a run
            failed.append(str(err))
            logger.warning("latent previews are off for the rest of this run: %s", err)
            return None

    return make


def step_callback(total: int) -> Callable[[int, int, torch.Tensor], None]:
    """on_step for the sampling loop: progress bar (+ preview) in ComfyUI, a log line outside;
    checks for the user's Cancel after every step (and `check_interrupt` between blocks)."""
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


def show_in_ui(text: str) -> None:
    """Show `text` on the running node in ComfyUI's UI (its progress text): where warnings
    (fallbacks, a face index out of range, a cut prompt) reach the user. The warning itself
    is logged once, by the core; outside ComfyUI this does nothing."""
    execution = _optional("comfy_execution.utils")
    server = _optional("server") if execution is not None else None
    if server is None:
        return
    try:
        context = execution.get_executing_context()
        if context is not None and getattr(server.PromptServer, "instance", None) is not None:
            server.PromptServer.instance.send_progress_text(text, context.node_id)
    except Exception as err:  # noqa: BLE001 - a message to the UI must never end a run
        logger.debug("could not show a message in the UI: %s", err)


PACK_PREFIX = "[EchoVideo] "


class _PrefixedToRoot(logging.Handler):
    """Hands a record to the root logger's handlers (ComfyUI's console and log) with the
    pack's name in front, so our lines are recognisable in ComfyUI's log."""

    def emit(self, record: logging.LogRecord) -> None:
        prefixed = logging.makeLogRecord({**record.__dict__, "msg": PACK_PREFIX + record.getMessage(), "args": None})
        for handler in logging.getLogger().handlers:
            if prefixed.levelno >= handler.level:
                handler.handle(prefixed)


def prefix_logs(*names: str) -> None:
    """Route the loggers `names` (the core's and the pack's) through `_PrefixedToRoot`."""
    for name in names:
        named = logging.getLogger(name)
        if not any(isinstance(h, _PrefixedToRoot) for h in named.handlers):
            named.addHandler(_PrefixedToRoot())
            named.propagate = False


def placement(mode: str, swap_blocks: int = 0):
    """A core Placement for a loader's `placement` widget, on ComfyUI's devices; inside
    ComfyUI it carries a fresh ComfyModels, so the bundle that keeps the placement keeps
    its patchers (they go when ComfyUI drops the loader's output)."""
    from echovideo_core.placement import Placement

    manager = ComfyModels() if _optional("comfy.model_patcher") is not None else None
    offload = torch.device("cpu") if mode == "cpu" else offload_device()
    return Placement.create(mode, execution_device(), offload, manager=manager, swap_blocks=swap_blocks)


class _Patchable(torch.nn.Module):
    """Holds one of our models for ModelPatcher, which writes `model.device` (a read-only
    property on diffusers / transformers models) and its bookkeeping attributes onto the
    module it is given. Named after the held class in ComfyUI's log ("Requested to load ...")."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module
        self.device = next(iter(module.parameters()), torch.empty(0)).device


_PATCHABLE_CLASSES: dict[str, type] = {}


def _patchable(module: torch.nn.Module) -> _Patchable:
    name = type(module).__name__
    cls = _PATCHABLE_CLASSES.setdefault(name, type(name, (_Patchable,), {"__module__": __name__}))
    return cls(module)


class ComfyModels:
    """The core's ModelManager inside ComfyUI: our modules run as ComfyUI-managed models.

    load_models_gpu(force_full_load=True): our layers are plain torch layers without ComfyUI's
    weight-casting ops, so a partial ("lowvram") load would leave layers behind on the offload
    device; a whole load is checked after the call and forced if ComfyUI still did a partial
    one (--novram). One patcher per module, kept here for the bundle's lifetime (ComfyUI's own
    list holds only weak references).
    """

    def __init__(self) -> None:
        self._patchers: dict[int, object] = {}

    def patcher(self, module: torch.nn.Module, placement) -> object:
        patcher = self._patchers.get(id(module))
        if patcher is None:
            model_patcher = importlib.import_module("comfy.model_patcher")
            patcher = model_patcher.ModelPatcher(_patchable(module), load_device=placement.execution_device,
                                                 offload_device=placement.offload_device)
            self._patchers[id(module)] = patcher
        return patcher

    @contextmanager
    def running(self, module: torch.nn.Module, placement) -> Iterator[None]:
        model_management = importlib.import_module("comfy.model_management")
        patcher = self.patcher(module, placement)
        model_management.load_models_gpu([patcher], force_full_load=True)
        if patcher.model.model_lowvram or patcher.loaded_size() < patcher.model_size():
            patcher.patch_model(placement.execution_device, lowvram_model_memory=0)
        try:
            yield
        finally:
            from echovideo_core.placement import OFFLOADING

            if placement.mode in OFFLOADING:
                unload(model_management, patcher)


def unload(model_management, patcher) -> None:
    """Take one model out of ComfyUI's loaded models, weights back to its offload device."""
    for index, loaded in enumerate(model_management.current_loaded_models):
        if loaded.model is patcher:
            model_management.current_loaded_models.pop(index).model_unload()
            return
    patcher.detach()
