"""Workflows saved with version 0.1 (older widget values) still validate and run, with the
numbers of today's workflows (tests/data/workflows_v0_1)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import comfy_harness as harness
from nodes_fixtures import basic_run, tiny_kit  # noqa: F401 (fixtures)

OLD = Path(__file__).parent / "data" / "workflows_v0_1"
OLD_UI = sorted(p.stem for p in OLD.glob("*.json"))


def test_old_basic_api_workflow_runs_to_the_same_latents_as_todays(basic_run, tiny_kit):
    old = json.loads((OLD / "api" / "echovideo_basic.json").read_text())
    assert old["8"]["inputs"]["dynamic_cfg"] == "as_released" and old["5"]["inputs"]["numeric_mode"] == "as_released"
    outputs = harness.run_workflow(old)
    assert torch.equal(outputs["8"][0]["samples"], basic_run["8"][0]["samples"])


@pytest.mark.parametrize("name", OLD_UI)
def test_old_ui_workflow_widget_values_still_fit_the_nodes(name, tiny_kit):
    workflow, nodes = json.loads((OLD / f"{name}.json").read_text()), harness.all_nodes()
    for node in workflow["nodes"]:
        cls = nodes.get(node["type"])
        if cls is None:
            continue  # notes
        values = list(node["widgets_values"])
        own = {}
        for widget, (kind, options) in harness.input_specs(cls).items():
            if not (isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")):
                continue
            value = values.pop(0)
            if widget in harness.custom_validated(cls):
                own[widget] = value
            else:
                harness.check_widget(str(node["id"]), widget, kind, options, value)
            if options.get("control_after_generate") or options.get("image_upload"):
                values.pop(0)
        assert not own or cls.VALIDATE_INPUTS(**own) is True
        assert values == []
