"""Loaded model components as typed bundles, and where their weights live while they wait.

Front ends that load components one by one (the ComfyUI loader nodes) pass these bundles
around instead of a whole pipeline: the EchoVideo model (transformer + VAE + scheduler),
the text encoder (T5 + tokenizer) and the face models (insightface + parser + RetinaFace +
SigLIP). Each bundle is a frozen dataclass; the models inside are ordinary torch modules.

Placement (`Placement.mode`):
- "main_device": weights stay on the execution device (fastest, most memory);
- "model_offload": weights wait on the offload device (CPU) and each model is moved to the
  execution device only while it runs, then moved back (`running_on`);
- "sequential_offload": like "model_offload" for the VAE, T5 and SigLIP; the DiT's weights
  stay on the offload device and each layer visits the execution device only for its own
  forward (diffusers' leaf-level group offloading): least GPU memory, slowest;
- "cpu": everything on the CPU.
Before a model is moved onto the execution device, the caller's `make_room(bytes, device)`
hook runs. A front end with its own memory manager instead puts a `ModelManager` in the
Placement (`Placement.create(..., manager=...)`): then `running_on` hands every move to it
(the ComfyUI nodes register our models with ComfyUI's model management this way, so ComfyUI
can unload them when it needs the memory). Nothing here knows about ComfyUI.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator, Protocol, Sequence

import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
from transformers import T5EncoderModel, T5Tokenizer

from echovideo_core.component_loading import load_t5_encoder_file, load_vae
from echovideo_core.errors import MissingModelFilesError
from echovideo_core.face_features import SiglipEncoder, load_siglip
from echovideo_core.loading import load_transformer
from echovideo_core.text import load_text_encoder, load_tokenizer
from echovideo_core.training.lora import apply_lora
from echovideo_core.transformer import EchoVideoTransformer3DModel

if TYPE_CHECKING:  # pragma: no cover
    from echovideo_core.face.prepare import FacePreparer

logger = logging.getLogger(__name__)

PLACEMENTS: tuple[str, ...] = ("main_device", "model_offload", "sequential_offload", "cpu")
OFFLOADING = ("model_offload", "sequential_offload")
# The release's scheduler (CogVideoX-5B), used when a single transformer file comes without one.
RELEASE_SCHEDULER_CONFIG: dict = {
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "clip_sample_range": 1.0, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True, "sample_max_value": 1.0, "set_alpha_to_one": True,
    "snr_shift_scale": 1.0, "steps_offset": 0, "timestep_spacing": "trailing", "trained_betas": None,
}
MakeRoom = Callable[[int, torch.device], None]


class ModelManager(Protocol):
    """A front end's memory manager: `running(module, placement)` has the module on
    placement.execution_device for the block and decides where it waits afterwards."""

    def running(self, module: torch.nn.Module, placement: "Placement") -> ContextManager[None]: ...


@dataclass(frozen=True)
class Placement:
    """mode: one of PLACEMENTS; execution_device runs the math; offload_device holds idle weights;
    manager: optional front-end memory manager (see ModelManager), None = move modules here."""

    mode: str
    execution_device: torch.device
    offload_device: torch.device
    manager: ModelManager | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, mode: str, execution_device: torch.device | str, offload_device: torch.device | str = "cpu",
               manager: ModelManager | None = None) -> "Placement":
        if mode not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {mode!r}")
        execution = torch.device("cpu") if mode == "cpu" else torch.device(execution_device)
        return cls(mode=mode, execution_device=execution, offload_device=torch.device(offload_device), manager=manager)

    @property
    def storage_device(self) -> torch.device:
        """Where weights sit between runs (with a manager: until it first loads them)."""
        if self.mode in OFFLOADING or self.manager is not None:
            return self.offload_device
        return self.execution_device


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of parameters and buffers (what moving the module to a device costs)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


@contextmanager
def running_on(module: torch.nn.Module, placement: Placement, make_room: MakeRoom | None = None) -> Iterator[torch.nn.Module]:
    """The module on the execution device for the duration of the block.

    With "model_offload" (and "sequential_offload", for a module that is not offloaded layer
    by layer) it is moved there on entry and back to the offload device on exit (also when
    the block raises, e.g. on a user's cancel); other modes leave it in place. With a
    manager in the placement, the manager does the moving (make_room is not called).
    """
    if getattr(module, "_execution_device", None) is not None:  # layer-offloaded: its hooks move it
        yield module
        return
    if placement.manager is not None:
        with placement.manager.running(module, placement):
            yield module
        return
    if placement.mode not in OFFLOADING:
        yield module
        return
    if make_room is not None:
        make_room(module_bytes(module), placement.execution_device)
    module.to(placement.execution_device)
    try:
        yield module
    finally:
        module.to(placement.offload_device)


@dataclass(frozen=True)
class EchoVideoModel:
    """The DiT, the VAE and the scheduler (a fresh copy is made from it for every run).

    vae is kept in float32 unless loaded otherwise; decode casts a temporary copy.
    source: where the transformer came from (for messages).
    """

    transformer: EchoVideoTransformer3DModel
    vae: AutoencoderKLCogVideoX
    scheduler: CogVideoXDPMScheduler
    placement: Placement
    source: str


@dataclass(frozen=True)
class TextEncoder:
    """T5 encoder and its sentencepiece tokenizer."""

    tokenizer: T5Tokenizer
    model: T5EncoderModel
    placement: Placement


def _scheduler(folder: Path | None) -> CogVideoXDPMScheduler:
    config_file = folder / "scheduler_config.json" if folder is not None else None
    if config_file is not None and config_file.is_file():
        config = json.loads(config_file.read_text())
    else:
        logger.info("no scheduler/scheduler_config.json beside the model: using the release's scheduler settings")
        config = RELEASE_SCHEDULER_CONFIG
    return CogVideoXDPMScheduler.from_config({k: v for k, v in config.items() if not k.startswith("_")})


def enable_fp8_storage(transformer: EchoVideoTransformer3DModel, compute_dtype: torch.dtype) -> None:
    """Keep weights in float8_e4m3fn, computing in `compute_dtype` (layer by layer casting)."""
    if not hasattr(torch, "float8_e4m3fn"):
        raise RuntimeError(f"this torch build ({torch.__version__}) has no float8_e4m3fn: use weight_storage=default")
    transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)


def load_echovideo_model(
    transformer_path: str | Path, *, vae_path: str | Path | None = None, dtype: torch.dtype = torch.bfloat16,
    placement: Placement | None = None, fp8_storage: bool = False,
    loras: Sequence[tuple[str | Path, float]] = (),
) -> EchoVideoModel:
    """Transformer from a released root / `transformer/` folder / single file; VAE from
    `vae_path` (folder or file) or the root's `vae/`; scheduler from the root's `scheduler/`.
    `loras`: (file, strength) pairs merged into the freshly loaded transformer, so a cached
    model is never changed behind its user's back (another strength means another load)."""
    placement = placement or Placement.create("cpu", "cpu")
    path = Path(transformer_path)
    root = path if path.is_dir() and (path / "transformer").is_dir() else None
    if vae_path is None:
        if root is None or not (root / "vae").is_dir():
            raise MissingModelFilesError(
                f"no VAE: {path} is not a released EchoVideo folder with vae/ inside; "
                "pick a CogVideoX VAE file (models/vae/) in the loader"
            )
        vae_path = root / "vae"
    transformer = load_transformer(root / "transformer" if root else path, torch_dtype=dtype)
    for lora, strength in loras:
        apply_lora(transformer, lora, strength)
    if fp8_storage:
        enable_fp8_storage(transformer, dtype)
    vae = load_vae(vae_path, torch.float32)
    device = placement.storage_device
    if placement.mode == "sequential_offload":
        transformer.enable_sequential_offload(placement.execution_device, placement.offload_device)
    else:
        transformer.to(device)
    return EchoVideoModel(transformer=transformer, vae=vae.to(device),
                          scheduler=_scheduler(root / "scheduler" if root else None),
                          placement=placement, source=str(path))


def load_text_encoder_bundle(source: str | Path, *, tokenizer_dir: str | Path | None = None,
                             dtype: torch.dtype = torch.bfloat16, placement: Placement | None = None) -> TextEncoder:
    """T5 from a released root (text_encoder/ + tokenizer/), a `text_encoder/` folder or a
    single weight file; the tokenizer from `tokenizer_dir` or the root's `tokenizer/`."""
    placement = placement or Placement.create("cpu", "cpu")
    path = Path(source)
    if path.is_dir() and (path / "text_encoder").is_dir():
        model = load_text_encoder(path / "text_encoder", dtype)
        tokenizer_dir = tokenizer_dir or path / "tokenizer"
    elif path.is_dir():
        model = load_text_encoder(path, dtype)
    else:
        model = load_t5_encoder_file(path, dtype)
    if tokenizer_dir is None:
        raise MissingModelFilesError(f"no T5 tokenizer for {path}: expected a tokenizer/ folder with spiece.model")
    tokenizer = _tokenizer(Path(tokenizer_dir))
    if len(tokenizer) > model.config.vocab_size:
        raise MissingModelFilesError(
            f"the tokenizer in {tokenizer_dir} has {len(tokenizer)} tokens but the T5 in {path} only "
            f"{model.config.vocab_size}: they do not belong together"
        )
    return TextEncoder(tokenizer=tokenizer, model=model.to(placement.storage_device), placement=placement)


def _tokenizer(folder: Path) -> T5Tokenizer:
    """spiece.model (the release's tokenizer/) or tokenizer.json (e.g. ComfyUI's t5_tokenizer/)."""
    if (folder / "spiece.model").is_file():
        return load_tokenizer(folder)
    if (folder / "tokenizer.json").is_file():
        return T5Tokenizer.from_pretrained(str(folder), local_files_only=True)
    raise MissingModelFilesError(f"T5 tokenizer: {folder} has neither spiece.model nor tokenizer.json")


def load_siglip_bundle(source: str | Path, dtype: torch.dtype, placement: Placement) -> SiglipEncoder:
    """SigLIP from a released root (clip_visual_encoder/) or a HF vision folder."""
    path = Path(source)
    folder = path / "clip_visual_encoder" if (path / "clip_visual_encoder").is_dir() else path
    encoder = load_siglip(folder, dtype)
    encoder.model.to(placement.storage_device)
    return encoder


@dataclass(frozen=True)
class FaceModels:
    """Face preparation (insightface + parser + RetinaFace) and the SigLIP vision tower."""

    preparer: "FacePreparer"
    siglip: SiglipEncoder
    placement: Placement


def face_preparer(antelopev2_dir: str | Path, parser_path: str | Path, retinaface_path: str | Path | None,
                  device: torch.device) -> "FacePreparer":
    """A FacePreparer over files that may sit in different folders (ComfyUI keeps antelopev2
    in models/insightface/models/ and the parser in models/facexlib/)."""
    from echovideo_core.face.prepare import FacePreparer

    return FacePreparer.from_paths(antelopev2_dir, parser_path, retinaface_path, device=device)


def load_face_models(antelopev2_dir: str | Path, parser_path: str | Path, retinaface_path: str | Path | None,
                     siglip_source: str | Path, *, dtype: torch.dtype = torch.float32,
                     placement: Placement | None = None) -> FaceModels:
    """Everything the face stage needs; the small face models run on the execution device."""
    placement = placement or Placement.create("cpu", "cpu")
    preparer = face_preparer(antelopev2_dir, parser_path, retinaface_path, placement.execution_device)
    return FaceModels(preparer=preparer, siglip=load_siglip_bundle(siglip_source, dtype, placement), placement=placement)
