"""The package's import graph runs one way (DESIGN.md §2): no module imports one that imports it back."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "skillcall"


def imports() -> dict[str, set[str]]:
    """``{module: {skillcall modules it imports, at top level or inside functions}}``."""
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("skillcall"):
                names |= {node.module.split(".")[1]} if "." in node.module else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("skillcall.")}
        graph[path.stem] = names - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as ``[a, b, ..., a]``, or None.

    >>> find_cycle({"a": {"b"}, "b": {"a"}})
    ['a', 'b', 'a']
    >>> find_cycle({"a": {"b"}, "b": set()}) is None
    True
    """
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            if cycle := visit(nxt, path + [node]):
                return cycle
        done.add(node)
        return None

    return next((c for n in sorted(graph) if (c := visit(n, []))), None)


def test_no_import_cycle_in_the_package():
    assert find_cycle(imports()) is None


def test_layers_run_downwards():
    graph = imports()
    assert graph["calls"] <= {"skills"} and graph["skills"] == set()
    assert not graph["models"] & {"evaluate", "train", "generation", "export", "predict"}
    assert not graph["generation"] & {"evaluate", "train", "models", "export", "predict"}
    assert "evaluate" not in graph["train"] and "train" not in graph["evaluate"]


def test_each_stage_depends_on_every_package_module_it_runs():
    """A stage's ``deps`` in dvc.yaml list every ``skillcall`` module its ``stages/*.py`` imports, directly or
    through another module: editing one reruns the stages that run its code (``durations.py`` changes the prompt,
    so finetune, eval and export), and only those."""
    import yaml

    graph, root = imports(), PACKAGE.parent
    missing = {}
    for name, stage in yaml.safe_load((root / "dvc.yaml").read_text())["stages"].items():
        stage = stage.get("do", stage)  # a foreach stage's body
        if not (script := next((w for w in stage["cmd"].split() if w.startswith("stages.")), None)):
            continue
        tree = ast.parse((root / f"{script.replace('.', '/')}.py").read_text())
        todo = [
            module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "skillcall"
            for module in ([node.module.split(".")[1]] if "." in node.module else [a.name for a in node.names])
        ]
        needed: set[str] = set()
        while todo:
            if (module := todo.pop()) not in needed:
                needed.add(module)
                todo += graph.get(module, ())
        if lost := {f"skillcall/{m}.py" for m in needed} - set(stage.get("deps", [])):
            missing[name] = sorted(lost)
    assert not missing, missing
