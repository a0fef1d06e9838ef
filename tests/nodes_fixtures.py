"""Fixtures of the node and workflow tests: the tiny kit in a ComfyUI models/ tree, one run
of the basic API workflow shared by several tests, and the ComfyUI stand-in modules."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import comfy_harness as harness

STUB_DIR = Path(__file__).parent / "comfy_stub"
STUB_MODULES = ("folder_paths", "latent_preview", "comfy", "comfy.utils", "comfy.model_management", "comfy.cli_args",
                "comfy.model_patcher", "server", "comfy_execution", "comfy_execution.utils")
MODELS_ENV = "ECHOVIDEO_COMFY_MODELS"
# Each test module that imports a fixture gets its own copy of it, even session-scoped ones:
# the expensive results are kept here so that the kit is written and the workflow run once.
_ONCE: dict[str, object] = {}


@pytest.fixture(scope="session")
def tiny_kit(tmp_path_factory) -> Path:
    """`echovideo tiny-kit --comfy-models DIR` once per session; $ECHOVIDEO_COMFY_MODELS points at it."""
    from echovideo_core.commands.tiny_kit import write_tiny_kit

    if "kit" not in _ONCE:
        _ONCE["kit"] = tmp_path_factory.mktemp("comfy") / "models"
        write_tiny_kit(_ONCE["kit"], seed=0)
    models = _ONCE["kit"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MODELS_ENV, str(models))
        yield models


def api_workflow(name: str) -> dict:
    return json.loads((harness.WORKFLOWS / "api" / f"{name}.json").read_text())


@pytest.fixture(scope="session")
def basic_run(tiny_kit) -> dict[str, tuple]:
    """Outputs of every node of workflows/api/echovideo_basic.json run on the tiny kit."""
    if "basic_run" not in _ONCE:
        _ONCE["basic_run"] = harness.run_workflow(api_workflow("echovideo_basic"))
    return _ONCE["basic_run"]


@pytest.fixture()
def comfy_stub(tiny_kit):
    """ComfyUI's modules replaced by tests/comfy_stub for one test (models: the tiny kit)."""
    saved = {name: sys.modules.pop(name) for name in STUB_MODULES if name in sys.modules}
    sys.path.insert(0, str(STUB_DIR))
    try:
        import comfy.cli_args  # noqa: F401 (imported here so tests can reach it)
        import comfy.model_management as model_management
        import comfy.utils as utils
        import comfy_execution.utils as execution
        import folder_paths
        import server

        server.PromptServer.instance.texts.clear()
        execution.CURRENT = execution.ExecutionContext(prompt_id="p", node_id="5", list_index=None)

        folder_paths.models_dir = str(tiny_kit)
        folder_paths.folder_names_and_paths.clear()
        for kind in ("vae", "text_encoders", "diffusion_models", "clip_vision"):
            folder_paths.folder_names_and_paths[kind] = ([os.path.join(tiny_kit, kind)], set())
        utils.UPDATES.clear()
        model_management.INTERRUPT_AFTER, model_management.CHECKS = None, 0
        model_management.FREE_REQUESTS.clear()
        model_management.LOAD_REQUESTS.clear()
        model_management.current_loaded_models.clear()
        yield sys.modules
    finally:
        sys.path.remove(str(STUB_DIR))
        for name in STUB_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
