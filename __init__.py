"""ComfyUI-EchoVideo: the ComfyUI entry point (ComfyUI imports this file from custom_nodes/).

Each node group is imported on its own: a group that fails to import, or a node whose
optional dependency is missing (`REQUIRES`), is left out with a logged reason, and the rest
of the pack (and ComfyUI) starts normally. Nothing is installed or downloaded here.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

logger = logging.getLogger(__name__)

_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:  # echovideo_core lives beside this file (unless pip-installed)
    sys.path.append(_ROOT)

NODE_GROUPS = ("loaders", "face", "text", "fuse", "sampler", "decode", "native", "evaluation")
NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
DISABLED_NODES: dict[str, str] = {}  # node or group -> why it is unavailable


def _missing(requirements: tuple[str, ...]) -> list[str]:
    return [name for name in requirements if importlib.util.find_spec(name) is None]


def _register(group: str) -> None:
    try:
        module = importlib.import_module(f"{__name__}.nodes.{group}" if __package__ else f"nodes.{group}")
    except Exception as err:  # noqa: BLE001 - one broken group must not stop ComfyUI
        DISABLED_NODES[group] = f"{type(err).__name__}: {err}"
        logger.warning("%s nodes disabled: %s", group, DISABLED_NODES[group])
        return
    for name, cls in module.NODE_CLASS_MAPPINGS.items():
        missing = _missing(getattr(cls, "REQUIRES", ()))
        if missing:
            DISABLED_NODES[name] = f"missing Python package(s): {', '.join(missing)} (pip install -r requirements.txt)"
            logger.warning("node %s disabled: %s", name, DISABLED_NODES[name])
            continue
        NODE_CLASS_MAPPINGS[name] = cls
        NODE_DISPLAY_NAME_MAPPINGS[name] = module.NODE_DISPLAY_NAME_MAPPINGS[name]


def _setup() -> None:
    try:
        adapter = importlib.import_module(f"{__name__}.nodes.comfy_adapter" if __package__ else "nodes.comfy_adapter")
        if "comfy.model_management" in sys.modules:  # loaded by ComfyUI (not by a test or a script)
            adapter.prefix_logs("echovideo_core", __name__)  # "[EchoVideo] ..." in ComfyUI's log
        adapter.register_model_folders()
    except Exception as err:  # noqa: BLE001 - the loaders then list nothing and say where models go
        logger.warning("EchoVideo: could not register model folders: %s", err)
    for group in NODE_GROUPS:
        _register(group)


_setup()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
