"""The shape of the library (docs/architecture.md): one way through, each rule in one place.

Checked on the source text (imports parsed with `ast`, nothing imported): no import cycle
between modules, training above inference, one weight-file reader, one VAE loader, and a
core that never imports ComfyUI.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "echovideo_core"
COMFY_MODULES = ("comfy", "comfy_api", "folder_paths", "nodes", "server", "latent_preview")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in CORE.rglob("*.py")}


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path) -> set[str]:
    """Modules a file imports anywhere (function-level too), except under `if TYPE_CHECKING`."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if _under_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES)
    return found


def internal_graph() -> dict[str, set[str]]:
    return {name: {m for m in imports_of(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def test_no_import_cycle_between_library_modules():
    graph = internal_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if state.get(target) is None:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if state.get(name) is None:
            visit(name)


def test_only_training_and_the_cli_import_training():
    allowed = ("echovideo_core.training", "echovideo_core.commands", "echovideo_core.cli")
    offenders = {name: sorted(t for t in targets if t.startswith("echovideo_core.training"))
                 for name, targets in internal_graph().items() if not name.startswith(allowed)}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_core_never_imports_comfyui():
    offenders = {name: sorted(m for m in imports_of(path) if m.split(".")[0] in COMFY_MODULES)
                 for name, path in MODULES.items()}
    assert not {k: v for k, v in offenders.items() if v}


def _files_using(pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return sorted(str(p.relative_to(ROOT)) for p in list(CORE.rglob("*.py")) + list((ROOT / "nodes").rglob("*.py"))
                  if regex.search(p.read_text()))


def test_one_reader_opens_weight_files():
    assert _files_using(r"\bsafe_open\(|\bload_file\(|\btorch\.load\(") == ["echovideo_core/loading/state_dict.py"]


def test_one_loader_builds_the_vae():
    assert _files_using(r"AutoencoderKLCogVideoX\.from_pretrained|AutoencoderKLCogVideoX\.from_config") == [
        "echovideo_core/loading/vae.py"]
    assert _files_using(r"^def load_vae\(|\ndef load_vae\(") == ["echovideo_core/loading/vae.py"]


def test_the_guidance_on_off_rule_is_written_once():
    assert _files_using(r"guidance_scale\s*>\s*1|guidance\s*>\s*1") == ["echovideo_core/guidance.py"]
