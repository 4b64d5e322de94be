"""One-way imports between avs's packages: each may import only packages of a lower layer.

Every import counts, those inside functions too (they hide cycles as well as top-level ones do).
"""

import ast
from collections import defaultdict
from pathlib import Path

AVS = Path(__file__).resolve().parents[1] / "avs"

# Higher number = higher layer. Data flows one way (DESIGN.md): dataset -> decode -> features -> shards ->
# clusters / training -> predictions -> ensemble -> evaluation; the CLI sits on top, shared pieces below.
LAYERS = {
    "config": 0,
    "flags": 1,  # avs.flags: argparse flags generated from configs (imports avs.config only)
    "registry": 1,
    "progress": 0,
    "classes": 0,
    "tables": 0,
    "presets": 0,
    "ray_start": 0,
    "decode": 2,
    "features": 2,
    "testing": 3,  # generated media and faulty decoders for tests and the demo data
    "data": 4,
    "shards": 5,
    "predictions": 6,
    "models": 6,
    "cluster": 7,
    "ensemble": 7,
    "eval": 8,
    "train": 9,
    "serve": 10,  # the online service: extraction pieces + trained runs behind HTTP
    "cli": 11,
}


def package_of(path: Path) -> str:
    rel = path.relative_to(AVS)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> set[str]:
    """avs packages that ``path`` imports (any import statement, anywhere in the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "avs" and len(parts) > 1:
                out.add(parts[1])
    return out


def violations(graph: dict[str, set[tuple[str, str]]], layers: dict[str, int]) -> list[str]:
    bad = []
    for pkg, targets in sorted(graph.items()):
        for target, where in sorted(targets):
            if target == pkg:
                continue
            if pkg not in layers or target not in layers:
                bad.append(f"{where}: {pkg} -> {target} (a package without a layer: add it to LAYERS)")
            elif layers[target] >= layers[pkg]:
                bad.append(f"{where}: {pkg} (layer {layers[pkg]}) imports {target} (layer {layers[target]})")
    return bad


def _graph() -> dict[str, set[tuple[str, str]]]:
    graph: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in AVS.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == AVS:
            continue  # avs/__init__.py: the version only
        for target in imports(path):
            graph[package_of(path)].add((target, str(path.relative_to(AVS.parent))))
    return graph


def test_imports_between_packages_go_one_way():
    assert violations(_graph(), LAYERS) == []


def test_the_check_catches_a_cycle_and_an_unknown_package():
    graph = {"train": {("eval", "avs/train/job.py")}, "eval": {("train", "avs/eval/job.py")}}
    assert violations(graph, {"train": 8, "eval": 7}) == ["avs/eval/job.py: eval (layer 7) imports train (layer 8)"]
    assert "without a layer" in violations({"serve": {("train", "avs/serve/app.py")}}, {"train": 8})[0]
