"""ComfyUI's native CogVideoX key layout for the EchoVideo transformer, both ways.

The release stores the DiT in diffusers' layout (`transformer_blocks.N.attn1.to_q.weight`,
`ff.net.0.proj`, `time_embedding.linear_1`, ...). ComfyUI's own CogVideoX model
(`comfy/ldm/cogvideo/model.py`) names the same tensors differently (`blocks.N.q.weight`,
`ff_proj`, `time_embedding_linear_1`, ...) and its model detector only recognises that
layout: `Load Diffusion Model` refuses a file in the release's layout ("Could not detect
model type"). The tensors themselves are identical (same shapes, same math), so a file for
core is the release's tensors under renamed keys. The IITF layers (`face_proj`,
`text_proj`, `face_info_proj`, `face_prj_wofc.*`) keep their names: core loads the DiT
without them (it logs them as unexpected keys) and the identity node reads them from the
same file.

Pure string mapping: no ComfyUI import (docs/native_comfyui.md has the facts behind it).
"""
from __future__ import annotations

from typing import Mapping, TypeVar

T = TypeVar("T")

TOP_LEVEL: tuple[tuple[str, str], ...] = (
    ("time_embedding.linear_1.", "time_embedding_linear_1."),
    ("time_embedding.linear_2.", "time_embedding_linear_2."),
    ("ofs_embedding.linear_1.", "ofs_embedding_linear_1."),
    ("ofs_embedding.linear_2.", "ofs_embedding_linear_2."),
)
"""(release prefix, core prefix) outside the blocks; every other top-level key is the same."""

IN_BLOCK: tuple[tuple[str, str], ...] = (
    ("attn1.to_q.", "q."),
    ("attn1.to_k.", "k."),
    ("attn1.to_v.", "v."),
    ("attn1.to_out.0.", "attn_out."),
    ("attn1.norm_q.", "norm_q."),
    ("attn1.norm_k.", "norm_k."),
    ("ff.net.0.proj.", "ff_proj."),
    ("ff.net.2.", "ff_out."),
)
"""(release name, core name) inside one block; norm1 / norm2 are the same in both."""

RELEASE_BLOCKS, NATIVE_BLOCKS = "transformer_blocks.", "blocks."
IITF_PREFIXES: tuple[str, ...] = ("face_proj.", "text_proj.", "face_info_proj.", "face_prj_wofc.")
"""The identity-fusion layers: the same names in both layouts, unknown to core's model."""


def _swap_prefix(name: str, pairs: tuple[tuple[str, str], ...], forward: bool) -> str:
    for release, native in pairs:
        old, new = (release, native) if forward else (native, release)
        if name.startswith(old):
            return new + name[len(old):]
    return name


def native_key(key: str) -> str:
    """Release (diffusers) key -> ComfyUI native key; unknown keys pass unchanged."""
    if key.startswith(RELEASE_BLOCKS):
        index, _, rest = key[len(RELEASE_BLOCKS):].partition(".")
        return f"{NATIVE_BLOCKS}{index}.{_swap_prefix(rest, IN_BLOCK, True)}"
    return _swap_prefix(key, TOP_LEVEL, True)


def release_key(key: str) -> str:
    """ComfyUI native key -> release (diffusers) key; the inverse of `native_key`."""
    if key.startswith(NATIVE_BLOCKS):
        index, _, rest = key[len(NATIVE_BLOCKS):].partition(".")
        return f"{RELEASE_BLOCKS}{index}.{_swap_prefix(rest, IN_BLOCK, False)}"
    return _swap_prefix(key, TOP_LEVEL, False)


def is_native_layout(keys: object) -> bool:
    """True for a state dict (or key list) in core's layout: blocks under `blocks.N.`."""
    return any(str(k).startswith(NATIVE_BLOCKS + "0.") for k in keys) and not any(
        str(k).startswith(RELEASE_BLOCKS) for k in keys)


def to_native_layout(state_dict: Mapping[str, T]) -> dict[str, T]:
    """The same tensors under core's names (order kept)."""
    return {native_key(k): v for k, v in state_dict.items()}


def to_release_layout(state_dict: Mapping[str, T]) -> dict[str, T]:
    """A state dict in either layout -> the release's names (unchanged when already so)."""
    if not is_native_layout(state_dict):
        return dict(state_dict)
    return {release_key(k): v for k, v in state_dict.items()}


def iitf_keys(keys: object) -> list[str]:
    """The identity-fusion layers' keys among `keys` (any layout)."""
    return [str(k) for k in keys if str(k).startswith(IITF_PREFIXES)]
