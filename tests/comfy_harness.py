"""ComfyUI without ComfyUI, for the node tests: the pack loaded as ComfyUI loads it, stand-ins
for the few core nodes the workflows use, and a small executor for API-format workflows.

The stand-ins declare the same inputs as ComfyUI 0.3.x's LoadImage, ImageBatch, CreateVideo,
SaveVideo, PreviewImage and PreviewAny ("Preview as Text", input type "*" = any); they
read/record plain tensors and text. The executor validates every
input against the node's INPUT_TYPES (required inputs, combo values, number limits, link
types) before it calls the node, as ComfyUI's validation does.
"""
from __future__ import annotations

import inspect

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch

PACK_ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = PACK_ROOT / "workflows"
INPUT_DIR = WORKFLOWS / "input"
PACK_NAME = "ComfyUI_EchoVideo"


def load_pack(name: str = PACK_NAME):
    """Import the repository root as ComfyUI imports a custom node folder (a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PACK_ROOT / "__init__.py",
                                                  submodule_search_locations=[str(PACK_ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_pack_without(package: str, monkeypatch) -> Any:
    """The pack imported afresh as if `package` were not installed (find_spec says so)."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real_find_spec(name, *a))
    name = f"{PACK_NAME}_no_{package}"
    try:
        return load_pack(name)
    finally:
        for key in [k for k in sys.modules if k.startswith(name)]:
            del sys.modules[key]


@dataclass(frozen=True)
class Video:
    images: torch.Tensor
    fps: float


class LoadImage:
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "load_image"

    @classmethod
    def INPUT_TYPES(cls):
        files = sorted(p.name for p in INPUT_DIR.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})
        return {"required": {"image": (files, {"image_upload": True})}}

    def load_image(self, image):
        rgb = np.asarray(PIL.Image.open(INPUT_DIR / image).convert("RGB"), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(rgb)[None]
        return (tensor, torch.zeros(tensor.shape[1:3])[None])


class ImageBatch:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "batch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}}

    def batch(self, image1, image2):
        if image1.shape[1:] != image2.shape[1:]:  # ComfyUI rescales image2 to image1's size
            resized = torch.nn.functional.interpolate(image2.movedim(-1, 1), size=image1.shape[1:3], mode="bilinear")
            image2 = resized.movedim(1, -1)
        return (torch.cat([image1, image2]),)


class CreateVideo:
    RETURN_TYPES = ("VIDEO",)
    FUNCTION = "create_video"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "fps": ("FLOAT", {"default": 30.0, "min": 1.0, "max": 120.0, "step": 1.0})},
                "optional": {"audio": ("AUDIO",)}}

    def create_video(self, images, fps, audio=None):
        return (Video(images=images, fps=fps),)


class SaveVideo:
    RETURN_TYPES = ()
    FUNCTION = "save_video"
    OUTPUT_NODE = True
    saved: list[Video] = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": ("VIDEO",), "filename_prefix": ("STRING", {"default": "video/ComfyUI"}),
                             "format": (["auto", "mp4"], {"default": "auto"}),
                             "codec": (["auto", "h264"], {"default": "auto"})}}

    def save_video(self, video, filename_prefix, format, codec):
        SaveVideo.saved.append(video)
        return {"ui": {"images": [], "animated": (True,)}}


class PreviewImage:
    RETURN_TYPES = ()
    FUNCTION = "save_images"
    OUTPUT_NODE = True
    shown: list[torch.Tensor] = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    def save_images(self, images):
        PreviewImage.shown.append(images)
        return {"ui": {"images": []}}


class PreviewAny:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "main"
    OUTPUT_NODE = True
    shown: list[str] = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"source": ("*", {})}}

    def main(self, source=None):
        text = source if isinstance(source, str) else str(source)
        PreviewAny.shown.append(text)
        return {"ui": {"text": (text,)}, "result": (text,)}


def _declared(name: str, inputs: dict, returns: tuple) -> type:
    """A core node known by its declaration only (validation; running it needs ComfyUI: the
    native workflow runs in tests/test_comfyui_live.py). Model file names are free strings
    here; the live test checks them against a real server's lists."""
    def refuse(self, **_):
        raise WorkflowError(f"{name} is ComfyUI core's node: run this workflow in ComfyUI")
    return type(name, (), {"RETURN_TYPES": returns, "FUNCTION": "run", "run": refuse,
                           "INPUT_TYPES": classmethod(lambda cls: {"required": inputs})})


DECLARED_CORE_NODES: dict[str, type] = {cls.__name__: cls for cls in (
    _declared("UNETLoader", {"unet_name": ("STRING",), "weight_dtype": (["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"],)}, ("MODEL",)),
    _declared("CLIPLoader", {"clip_name": ("STRING",), "type": (["cogvideox"],), "device": (["default", "cpu"],)}, ("CLIP",)),
    _declared("VAELoader", {"vae_name": ("STRING",)}, ("VAE",)),
    _declared("CLIPTextEncode", {"text": ("STRING", {"multiline": True}), "clip": ("CLIP",)}, ("CONDITIONING",)),
    _declared("CFGGuider", {"model": ("MODEL",), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0})}, ("GUIDER",)),
    _declared("SamplerCustomAdvanced", {"noise": ("NOISE",), "guider": ("GUIDER",), "sampler": ("SAMPLER",),
                                        "sigmas": ("SIGMAS",), "latent_image": ("LATENT",)}, ("LATENT", "LATENT")),
    _declared("VAEDecode", {"samples": ("LATENT",), "vae": ("VAE",)}, ("IMAGE",)),
)}
CORE_NODES: dict[str, type] = {cls.__name__: cls for cls in (LoadImage, ImageBatch, CreateVideo, SaveVideo, PreviewImage,
                                                             PreviewAny)}
CORE_NODES.update(DECLARED_CORE_NODES)


class WorkflowError(ValueError):
    """The workflow does not fit the node definitions (what ComfyUI would reject)."""


def all_nodes() -> dict[str, type]:
    return {**CORE_NODES, **load_pack().NODE_CLASS_MAPPINGS}


def input_specs(cls: type) -> dict[str, tuple]:
    """name -> (type or combo list, options) over required and optional inputs."""
    spec = cls.INPUT_TYPES()
    merged = {**spec.get("required", {}), **spec.get("optional", {})}
    return {name: (value[0], value[1] if len(value) > 1 else {}) for name, value in merged.items()}


def check_widget(node: str, name: str, kind: Any, options: dict, value: Any) -> None:
    """A widget value as ComfyUI validates it (combo membership, number limits and types)."""
    if isinstance(kind, list):
        if value not in kind:
            raise WorkflowError(f"node {node}: {name}={value!r} not in list {kind[:8]}")
    elif kind == "INT":
        if isinstance(value, bool) or not isinstance(value, int):
            raise WorkflowError(f"node {node}: {name} must be an int, got {value!r}")
    elif kind == "FLOAT":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise WorkflowError(f"node {node}: {name} must be a number, got {value!r}")
    elif kind == "BOOLEAN":
        if not isinstance(value, bool):
            raise WorkflowError(f"node {node}: {name} must be true/false, got {value!r}")
    elif kind == "STRING":
        if not isinstance(value, str):
            raise WorkflowError(f"node {node}: {name} must be a string, got {value!r}")
    if kind in ("INT", "FLOAT"):
        if "min" in options and value < options["min"] or "max" in options and value > options["max"]:
            raise WorkflowError(f"node {node}: {name}={value} outside [{options.get('min')}, {options.get('max')}]")
        if kind == "INT" and options.get("step", 1) > 1 and (value - options.get("min", 0)) % options["step"]:
            raise WorkflowError(f"node {node}: {name}={value} is not min + k * {options['step']}")


def topological_order(workflow: dict[str, dict]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node_id: str) -> None:
        if state.get(node_id) == 2:
            return
        if state.get(node_id) == 1:
            raise WorkflowError(f"cycle through node {node_id}")
        state[node_id] = 1
        for value in workflow[node_id]["inputs"].values():
            if is_link(value):
                if value[0] not in workflow:
                    raise WorkflowError(f"node {node_id} links to missing node {value[0]}")
                visit(value[0])
        state[node_id] = 2
        order.append(node_id)

    for node_id in sorted(workflow, key=lambda k: int(k) if k.isdigit() else k):
        visit(node_id)
    return order


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def custom_validated(cls: type) -> list[str]:
    """Inputs a node validates itself: ComfyUI skips its own combo and range checks for every
    argument of the node's VALIDATE_INPUTS and calls it instead."""
    validator = getattr(cls, "VALIDATE_INPUTS", None)
    return [] if validator is None else list(inspect.signature(validator).parameters)


def validate(workflow: dict[str, dict], nodes: dict[str, type]) -> None:
    """Every node known, every required input given, widgets valid, link types matching."""
    for node_id, node in workflow.items():
        cls = nodes.get(node["class_type"])
        if cls is None:
            raise WorkflowError(f"node {node_id}: unknown class_type {node['class_type']!r}")
        specs = input_specs(cls)
        required = cls.INPUT_TYPES().get("required", {})
        for name in required:
            if name not in node["inputs"]:
                raise WorkflowError(f"node {node_id} ({node['class_type']}): required input {name!r} missing")
        for name, value in node["inputs"].items():
            if name not in specs:
                raise WorkflowError(f"node {node_id} ({node['class_type']}): unknown input {name!r}")
            kind, options = specs[name]
            if is_link(value):
                source = nodes[workflow[value[0]]["class_type"]]
                produced = source.RETURN_TYPES[value[1]]
                if produced != kind and kind != "*":  # "*" accepts any type, as in ComfyUI
                    raise WorkflowError(f"node {node_id}: input {name} wants {kind}, link gives {produced}")
            elif name not in custom_validated(cls):
                check_widget(node_id, name, kind, options, value)
        own = {n: v for n, v in node["inputs"].items() if n in custom_validated(cls) and not is_link(v)}
        if own and (verdict := cls.VALIDATE_INPUTS(**own)) is not True:
            raise WorkflowError(f"node {node_id} ({node['class_type']}): {verdict}")


def run_workflow(workflow: dict[str, dict], nodes: dict[str, type] | None = None) -> dict[str, tuple]:
    """Validate, then run every node in dependency order; returns each node's outputs."""
    nodes = nodes or all_nodes()
    validate(workflow, nodes)
    results: dict[str, tuple] = {}
    for node_id in topological_order(workflow):
        node = workflow[node_id]
        cls = nodes[node["class_type"]]
        kwargs = {name: results[v[0]][v[1]] if is_link(v) else v for name, v in node["inputs"].items()}
        output = getattr(cls(), cls.FUNCTION)(**kwargs)
        results[node_id] = tuple(output.get("result", ())) if isinstance(output, dict) else tuple(output)
    return results
