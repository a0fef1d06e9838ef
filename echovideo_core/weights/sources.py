"""Weight sources read one tensor at a time: safetensors files and folders, GGUF files, dicts.

A source lists its tensors by their logical key (a foreign prefix stripped, fp8 scales
folded into their weight) with their shapes before anything is read, so keys are checked
before any model is built, and hands out one `StoredTensor` per `read`.

Why each read opens the file again: safetensors hands out tensors backed by the file's
memory map (copy-on-write), and every page a mapping has touched counts in the process's
resident memory until the mapping is gone. With one handle open for a whole load, every
page read for a layer that is then re-encoded (bf16 -> fp8) would stay counted: an 11 GB
checkpoint would show 11 GB of RSS while stored at half of it. Opened per tensor, a mapping
lives exactly as long as the tensor read through it (a tensor kept as read, in a plain
format, keeps its own: it is the weight). Re-opening costs a header parse (a few ms).
GGUF bytes are read with plain file reads, so a GGUF model is ordinary memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import torch

from echovideo_core.errors import MissingModelFilesError
from echovideo_core.errors import CheckpointMismatchError
from echovideo_core.loading.state_dict import (common_prefix, config_from_metadata, folder_weight_files, open_tensors,
                                               read_json, read_metadata)
from echovideo_core.weights.formats import GGUF_SUFFIX
from echovideo_core.weights.fp8 import FP8_DTYPE, IGNORED_SUFFIXES, MARKER_KEY, SCALE_SUFFIXES
from echovideo_core.weights.stored import StoredTensor

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


class TensorSource(Protocol):
    """What the layer-by-layer loader and the converter read from."""

    description: str
    config: dict[str, Any] | None

    def shapes(self) -> dict[str, tuple[int, ...]]: ...

    def read(self, key: str) -> StoredTensor: ...


@dataclass(frozen=True)
class _Entry:
    file: Path
    key: str
    shape: tuple[int, ...]
    scale_key: str | None = None


def _fold_scales(file_keys: Mapping[str, tuple[Path, tuple[int, ...]]], prefixes: Sequence[str]) -> dict[str, _Entry]:
    """{stored key: (file, shape)} -> {logical key: entry}: prefix dropped, scales attached to
    their weights, the scaled-fp8 marker and activation-scale entries left out."""
    keys = list(file_keys)
    prefix = common_prefix(keys, tuple(prefixes))
    scales = {}
    for key in keys:
        for suffix in SCALE_SUFFIXES:
            if key.endswith(suffix):
                scales[key[: -len(suffix)] + ".weight"] = key
    entries = {}
    for key, (file, shape) in file_keys.items():
        if key[len(prefix):] == MARKER_KEY or key in scales.values() or key.endswith(IGNORED_SUFFIXES):
            continue
        entries[key[len(prefix):]] = _Entry(file, key, shape, scales.get(key))
    return entries


@dataclass
class SafetensorsSource:
    """Tensors of one or more safetensors files (a single file, or a folder's shards)."""

    files: Sequence[Path]
    config: dict[str, Any] | None = None
    prefixes: Sequence[str] = ()
    description: str = ""
    has_fp8: bool = False
    _entries: dict[str, _Entry] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        found: dict[str, tuple[Path, tuple[int, ...]]] = {}
        for file in self.files:
            with open_tensors(file) as handle:
                for key in handle.keys():
                    found[key] = (file, handle.shape(key))
                    self.has_fp8 = self.has_fp8 or handle.stored_dtype(key) == "F8_E4M3"
        self._entries = _fold_scales(found, self.prefixes)
        self.description = self.description or str(self.files[0] if len(self.files) == 1 else self.files[0].parent)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: entry.shape for key, entry in self._entries.items()}

    def read(self, key: str) -> StoredTensor:
        entry = self._entries[key]
        with open_tensors(entry.file) as handle:
            tensor = handle.get(entry.key)
            scale = handle.get(entry.scale_key) if entry.scale_key else None
        return StoredTensor.plain(tensor, scale)


@dataclass
class StateDictSource:
    """Tensors already in memory (a `.bin`/`.pth` file read whole, or a model's state dict)."""

    tensors: Mapping[str, torch.Tensor]
    config: dict[str, Any] | None = None
    prefixes: Sequence[str] = ()
    description: str = "state dict"
    has_fp8: bool = False
    _entries: dict[str, _Entry] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._entries = _fold_scales({k: (Path(), tuple(v.shape)) for k, v in self.tensors.items()}, self.prefixes)
        self.has_fp8 = any(v.dtype == FP8_DTYPE for v in self.tensors.values())

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: entry.shape for key, entry in self._entries.items()}

    def read(self, key: str) -> StoredTensor:
        entry = self._entries[key]
        scale = self.tensors[entry.scale_key] if entry.scale_key else None
        return StoredTensor.plain(self.tensors[entry.key], scale)


@dataclass
class RenamedSource:
    """Another source seen through a key map: `aliases` {wanted key: key in the source}
    (tied weights a file keeps once), `dropped` keys hidden (a decoder the encoder does not use)."""

    inner: TensorSource
    aliases: Mapping[str, str] = field(default_factory=dict)
    dropped: Callable[[str], bool] = lambda key: False

    @property
    def description(self) -> str:
        return self.inner.description

    @property
    def config(self) -> dict[str, Any] | None:
        return self.inner.config

    def shapes(self) -> dict[str, tuple[int, ...]]:
        inner = self.inner.shapes()
        shapes = {k: v for k, v in inner.items() if not self.dropped(k)}
        shapes.update({want: inner[have] for want, have in self.aliases.items() if have in inner and want not in inner})
        return shapes

    def read(self, key: str) -> StoredTensor:
        inner = self.inner.shapes()
        return self.inner.read(key if key in inner else self.aliases[key])


def open_source(path: str | Path, *, prefixes: tuple[str, ...] = (), what: str, index_name: str, usual: str,
                read_other: Callable[[Path], tuple[dict[str, torch.Tensor], dict[str, Any] | None]] | None = None,
                ) -> TensorSource:
    """A folder (config.json + shards or one file), a .safetensors / .gguf file, or (through
    `read_other`, read whole) a weights-only .bin/.pt/.pth file, as a TensorSource."""
    from echovideo_core.weights.gguf_files import GGUFSource

    path = Path(path)
    if path.is_dir():
        config_path = path / "config.json"
        config = read_json(config_path) if config_path.is_file() else None
        files = folder_weight_files(path, what=what, usual=usual)
        if config is None and len(files) == 1:
            config = _metadata_config(files[0])
        return SafetensorsSource(files, config, prefixes, description=str(path))
    if not path.is_file():
        raise MissingModelFilesError(f"{what}: no file or folder at {path}")
    if path.suffix.lower() == GGUF_SUFFIX:
        return GGUFSource(path, prefixes)
    if path.suffix in SAFETENSORS_SUFFIXES:
        return SafetensorsSource([path], _metadata_config(path), prefixes)
    if read_other is None:
        raise CheckpointMismatchError(f"{path}: unsupported weight file type {path.suffix!r} (use .safetensors or .gguf)")
    tensors, config = read_other(path)
    return StateDictSource(tensors, config, prefixes, description=str(path))


def _metadata_config(path: Path) -> dict[str, Any] | None:
    return config_from_metadata(read_metadata(path), path)
