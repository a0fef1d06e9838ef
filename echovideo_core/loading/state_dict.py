"""One reader for every weight file, and one strict key report.

Every loader of the library (transformer, VAE, T5, SigLIP files, LoRAs, face models) reads
tensors through `read_state_dict` and checks them with `compare_keys` / `assign_strict`, so
"which files are safe to open" and "what a mismatch message says" exist once:

- safetensors (`.safetensors`, `.sft`) through `safe_open`, tensor by tensor (a dtype cast
  happens per tensor, so a file is never held twice in two precisions);
- `.bin` / `.pt` / `.pth` / `.ckpt` only with `torch.load(weights_only=True)`: no pickled code
  runs. A `{"state_dict": ...}` wrapper is unwrapped.
Anything unreadable raises `CheckpointMismatchError` naming the file.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from echovideo_core.errors import CheckpointMismatchError, MissingModelFilesError

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
WEIGHTS_ONLY_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
CONFIG_METADATA_KEY = "echovideo_config"
"""Metadata key under which our single-file exports keep their model config (JSON)."""
# What safetensors raises for a damaged or truncated file (its own type for a bad header).
UNREADABLE = (SafetensorError, OSError, ValueError, RuntimeError)


def cast_floating(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """`tensor` in `dtype` when it is floating point (integer buffers keep their type)."""
    return tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor


def iter_safetensors(path: Path, dtype: torch.dtype | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, tensor) pairs of a safetensors file, read one at a time."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            for key in handle.keys():
                yield key, cast_floating(handle.get_tensor(key), dtype)
    except UNREADABLE as err:
        raise CheckpointMismatchError(f"{path} is not a readable safetensors file ({err})") from err


class TensorFile:
    """An open safetensors file read lazily: names, shapes, whole tensors or one row of a
    tensor (the training data cache reads one window of a clip this way)."""

    def __init__(self, handle) -> None:
        self._handle = handle

    def keys(self) -> list[str]:
        return list(self._handle.keys())

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handle.get_slice(name).get_shape())

    def stored_dtype(self, name: str) -> str:
        """The tensor's dtype as the file names it ("BF16", "F8_E4M3", ...), without reading it."""
        return self._handle.get_slice(name).get_dtype()

    def get(self, name: str) -> torch.Tensor:
        return self._handle.get_tensor(name)

    def row(self, name: str, index: int) -> torch.Tensor:
        return self._handle.get_slice(name)[index]


@contextmanager
def open_tensors(path: str | Path) -> Iterator[TensorFile]:
    """A safetensors file opened for lazy reads (CheckpointMismatchError naming it when broken)."""
    path = Path(path)
    if not path.is_file():
        raise MissingModelFilesError(f"file not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            yield TensorFile(handle)
    except UNREADABLE as err:
        raise CheckpointMismatchError(f"{path} is not a readable safetensors file ({err})") from err


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file ({} for other formats)."""
    path = Path(path)
    if path.suffix not in SAFETENSORS_SUFFIXES:
        return {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return dict(handle.metadata() or {})
    except UNREADABLE as err:
        raise CheckpointMismatchError(f"{path} is not a readable safetensors file ({err})") from err


def read_state_dict(path: str | Path, dtype: torch.dtype | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (on the CPU; floating ones cast to `dtype` when given) and metadata of a file."""
    path = Path(path)
    if not path.is_file():
        raise MissingModelFilesError(f"model file not found: {path}")
    if path.suffix in SAFETENSORS_SUFFIXES:
        return dict(iter_safetensors(path, dtype)), read_metadata(path)
    if path.suffix not in WEIGHTS_ONLY_SUFFIXES:
        raise CheckpointMismatchError(
            f"{path}: unsupported weight file type {path.suffix!r} "
            f"(use {' / '.join(SAFETENSORS_SUFFIXES + WEIGHTS_ONLY_SUFFIXES)})"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a weights file"
        raise CheckpointMismatchError(f"cannot read {path} as a weights-only state dict: {err}") from err
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatchError(f"{path} does not hold a flat state dict of tensors")
    return {k: cast_floating(v, dtype) for k, v in state.items()}, {}


def common_prefix(keys: list[str], prefixes: tuple[str, ...]) -> str:
    """The first of `prefixes` that every key carries, or "" (other tools' single files)."""
    for prefix in prefixes:
        if keys and all(k.startswith(prefix) for k in keys):
            return prefix
    return ""


def strip_common_prefix(state_dict: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Drop the first of `prefixes` that every key carries (other tools' single files)."""
    prefix = common_prefix(list(state_dict), prefixes)
    return {k[len(prefix):]: v for k, v in state_dict.items()} if prefix else state_dict


@dataclass(frozen=True)
class KeyReport:
    """How a state dict differs from a model: keys it lacks, keys it has too many, and
    keys whose shapes differ as (key, checkpoint shape, model shape)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mis_shaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mis_shaped)

    def describe(self, limit: int = 20) -> str:
        def cut(items: list[str]) -> str:
            more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        parts = []
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {cut(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {cut(self.unexpected)}")
        if self.mis_shaped:
            shaped = [f"{k} (checkpoint {list(got)} vs model {list(want)})" for k, got, want in self.mis_shaped]
            parts.append(f"wrong shape {len(shaped)}: {cut(shaped)}")
        return "; ".join(parts)


def compare_keys(model_shapes: Mapping[str, tuple[int, ...]], state_dict: Mapping[str, object],
                 ignore_suffixes: tuple[str, ...] = ()) -> KeyReport:
    """Compare a model's {key: shape} with a state dict's tensors (or {key: shape})."""
    def kept(keys):
        return [k for k in keys if not k.endswith(ignore_suffixes)] if ignore_suffixes else list(keys)

    def shape(value) -> tuple[int, ...]:
        return tuple(value.shape) if hasattr(value, "shape") else tuple(value)

    missing = [k for k in kept(model_shapes) if k not in state_dict]
    unexpected = [k for k in kept(state_dict) if k not in model_shapes]
    mis_shaped = [(k, shape(state_dict[k]), tuple(model_shapes[k])) for k in kept(state_dict)
                  if k in model_shapes and shape(state_dict[k]) != tuple(model_shapes[k])]
    return KeyReport(missing, unexpected, mis_shaped)


def model_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def assign_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *, what: str,
                  dtype: torch.dtype | None = None, ignore_suffixes: tuple[str, ...] = (),
                  error: Callable[[str], Exception] = CheckpointMismatchError) -> None:
    """Check every key and shape (naming them on a mismatch), then assign the tensors, cast
    to `dtype`, into `model` (built on the meta device or not: tensors are assigned, not copied).

    `what` names the file and the model for the message; `ignore_suffixes` are buffers that
    older saves may lack (BatchNorm's `num_batches_tracked`) and that do not affect inference.
    """
    report = compare_keys(model_shapes(model), state, ignore_suffixes)
    if not report.ok:
        raise error(f"{what}: {report.describe()}")
    cast = {k: cast_floating(v, dtype) for k, v in state.items() if not k.endswith(ignore_suffixes or ("\0",))}
    model.load_state_dict(cast, strict=not ignore_suffixes, assign=True)


def read_json(path: str | Path) -> dict:
    """A JSON config file (config.json, scheduler_config.json, an index) as a dict, or
    CheckpointMismatchError naming the file when it is not valid JSON."""
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingModelFilesError(f"model file not found: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CheckpointMismatchError(f"{path} is not a valid JSON file ({err})") from err
    if not isinstance(data, dict):
        raise CheckpointMismatchError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def read_folder_weights(folder: str | Path, dtype: torch.dtype | None = None, *, what: str,
                        usual: str = "model.safetensors") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every tensor of a diffusers / transformers model folder: the shards an index
    (`*.safetensors.index.json`) lists, else its one `.safetensors` file, else one
    weights-only `.bin`. Metadata comes from a single file (sharded folders have none).
    `usual` names the file such a folder normally holds, for the message."""
    files = folder_weight_files(folder, what=what, usual=usual)
    if len(files) > 1 or any(Path(folder).glob("*.safetensors.index.json")):
        tensors: dict[str, torch.Tensor] = {}
        for file in files:
            tensors.update(read_state_dict(file, dtype)[0])
        return tensors, {}
    return read_state_dict(files[0], dtype)


def folder_weight_files(folder: str | Path, *, what: str, usual: str = "model.safetensors") -> list[Path]:
    """The weight files of a model folder: the shards its index (`*.safetensors.index.json`)
    lists, all present, else `usual`, else its one `.safetensors` (or one `.bin`) file."""
    folder = Path(folder)
    indexes = sorted(folder.glob("*.safetensors.index.json"))
    if indexes:
        weight_map = read_json(indexes[0]).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointMismatchError(f"{indexes[0]} has no weight_map")
        shards = sorted(set(weight_map.values()))
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise MissingModelFilesError(f"{what}: {indexes[0]} lists shards that are not there: {', '.join(missing)}")
        return [folder / name for name in shards]
    if (folder / usual).is_file():
        return [folder / usual]
    singles = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if len(singles) != 1:
        raise MissingModelFilesError(
            f"{what}: expected {usual} (or one .safetensors file, or an index with its shards) in {folder}, "
            f"found {len(singles)} weight files"
        )
    return singles


def empty_model(build: Callable[[], nn.Module]) -> nn.Module:
    """`build()` with its parameters on the meta device (no memory, no random init) and its
    buffers real (accelerate's init_empty_weights), ready for `assign_strict`."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        return build()


def config_from_metadata(metadata: Mapping[str, str], source: str | Path) -> dict | None:
    """The model config our exports keep in the file's metadata, or None when absent."""
    import json

    if CONFIG_METADATA_KEY not in metadata:
        return None
    try:
        return dict(json.loads(metadata[CONFIG_METADATA_KEY]))
    except (ValueError, TypeError) as err:
        raise CheckpointMismatchError(f"{source}: its {CONFIG_METADATA_KEY} metadata is not a JSON object ({err})") from err


def save_with_config(module: nn.Module, config: Mapping[str, object], path: str | Path) -> Path:
    """One .safetensors file holding `module`'s tensors and `config` in its metadata, written
    atomically: how our single-file exports (and the tiny kits) carry their settings."""
    import json

    from safetensors.torch import save_file

    from echovideo_core.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    clean = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items() if not k.startswith("_")}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={CONFIG_METADATA_KEY: json.dumps(clean)})
    return path
