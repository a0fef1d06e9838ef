"""UI-format workflows: links, node types and widget values agree with the node definitions,
and each has the note that says where the models go."""
from __future__ import annotations

import json

import pytest

import comfy_harness as harness
from nodes_fixtures import api_workflow, tiny_kit  # noqa: F401 (fixture)

UI_WORKFLOWS = sorted(p.stem for p in harness.WORKFLOWS.glob("*.json"))
FRONTEND_ONLY = {"Note", "MarkdownNote"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def ui_workflow(name: str) -> dict:
    return json.loads((harness.WORKFLOWS / f"{name}.json").read_text())


def link_inputs(cls: type) -> list[tuple[str, str]]:
    return [(n, k) for n, (k, _) in harness.input_specs(cls).items() if not isinstance(k, list) and k not in WIDGET_TYPES]


def widget_inputs(cls: type) -> list[tuple[str, object, dict]]:
    return [(n, k, o) for n, (k, o) in harness.input_specs(cls).items() if isinstance(k, list) or k in WIDGET_TYPES]


def test_every_ui_workflow_has_an_api_copy():
    assert UI_WORKFLOWS == sorted(p.stem for p in (harness.WORKFLOWS / "api").glob("*.json"))


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_ui_workflow_nodes_are_known_and_links_match_slots_and_types(name):
    workflow, nodes = ui_workflow(name), harness.all_nodes()
    by_id = {n["id"]: n for n in workflow["nodes"]}
    assert all(n["type"] in nodes or n["type"] in FRONTEND_ONLY for n in workflow["nodes"])
    for link_id, source, slot, target, target_slot, kind in workflow["links"]:
        produced = nodes[by_id[source]["type"]].RETURN_TYPES[slot]
        name_, wanted = link_inputs(nodes[by_id[target]["type"]])[target_slot]
        assert produced == kind and wanted in (produced, "*"), (link_id, produced, wanted, kind)
        assert by_id[target]["inputs"][target_slot]["link"] == link_id and by_id[target]["inputs"][target_slot]["name"] == name_
        assert link_id in by_id[source]["outputs"][slot]["links"]
    assert workflow["last_link_id"] == max(l[0] for l in workflow["links"])
    assert workflow["last_node_id"] == max(by_id)


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_ui_workflow_required_inputs_are_all_connected(name):
    workflow, nodes = ui_workflow(name), harness.all_nodes()
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        required = nodes[node["type"]].INPUT_TYPES()["required"]
        for slot, (input_name, _) in enumerate(link_inputs(nodes[node["type"]])):
            if input_name in required:
                assert node["inputs"][slot]["link"] is not None, (node["type"], input_name)


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_ui_workflow_widget_values_fit_the_node_definitions(name, tiny_kit):
    workflow, nodes = ui_workflow(name), harness.all_nodes()
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        values = list(node["widgets_values"])
        for widget, kind, options in widget_inputs(nodes[node["type"]]):
            harness.check_widget(str(node["id"]), widget, kind, options, values.pop(0))
            if options.get("control_after_generate"):
                assert values.pop(0) in ("fixed", "increment", "decrement", "randomize")
            if options.get("image_upload"):
                assert values.pop(0) == "image"
        assert values == [], f"node {node['id']} ({node['type']}) has extra widget values {values}"


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_ui_workflow_uses_the_release_defaults_and_the_api_copy_only_smaller_sizes(name):
    ui = {n["type"]: n["widgets_values"] for n in ui_workflow(name)["nodes"]}
    if "EchoVideoSampler" in ui:
        assert ui["EchoVideoSampler"][:4] == [848, 480, 49, 50]
    else:  # native: the size on Apply Identity, the steps on the scheduler
        assert ui["EchoVideoApplyIdentityNative"][:3] == [848, 480, 49] and ui["EchoVideoScheduler"] == [50]
    api = api_workflow(name)
    api_types = sorted(n["class_type"] for n in api.values())
    ui_types = sorted(n["type"] for n in ui_workflow(name)["nodes"] if n["type"] not in FRONTEND_ONLY)
    assert api_types == ui_types


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_ui_workflow_has_a_note_saying_where_the_models_go(name):
    notes = [n for n in ui_workflow(name)["nodes"] if n["type"] == "Note"]
    assert notes and "models/" in notes[0]["widgets_values"][0] and "echovideo/EchoVideo/" in notes[0]["widgets_values"][0]
