"""docs/architecture.md is the law of the import graph: every module is placed, every import is allowed.

The table "Who may import whom" gives each layer its folders and files and the layers it may
import; the table "Every module" places each module. Imports inside functions and under
``TYPE_CHECKING`` count like any other: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "n2n_hub"
DOC = ROOT / "docs" / "architecture.md"

sys.path.insert(0, str(ROOT / "bench"))
import import_graph  # noqa: E402 - the one reader of the import graph, beside the benchmarks


def _table(heading: str) -> list[list[str]]:
    """The rows of the markdown table under ``heading`` (cells stripped, header and rule dropped)."""
    text = DOC.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue
        rows.append(cells)
    return rows[1:]  # without the header


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def module_name(path: Path) -> str:
    return import_graph.module_name(path, ROOT)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its body (bench/import_graph.py reads them)."""
    return import_graph.imports(path, ROOT, set(modules))


def layers() -> tuple[dict[str, str], dict[str, set[str]]]:
    """``(module -> layer, layer -> layers it may import)`` from the doc."""
    modules = all_modules()
    where: dict[str, str] = {}
    allowed: dict[str, set[str]] = {}
    rows = _table("## Who may import whom")
    names = [r[0] for r in rows]
    for layer, rooms, may in ((r[0], r[1], r[2]) for r in rows):
        allowed[layer] = {n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", may)}
        for room in _ticked(rooms):
            prefix = ("n2n_hub." + room.rstrip("/").removesuffix(".py").replace("/", ".")).removesuffix(".__init__")
            hits = [m for m in modules if m == prefix or (room.endswith("/") and m.startswith(prefix + "."))
                    or (room.endswith("/") and m == prefix)]
            assert hits, f"docs/architecture.md names `{room}`, which is not a module or folder of n2n_hub"
            for m in hits:
                where[m] = layer
    return where, allowed


def test_every_module_is_placed_in_a_layer_and_listed():
    where, _ = layers()
    modules = all_modules()
    assert sorted(set(modules) - set(where)) == [], "modules missing from docs/architecture.md's layer table"
    listed = {("n2n_hub." + c.removesuffix(".py").replace("/", ".")).removesuffix(".__init__")
              for row in _table("## Every module") for c in _ticked(row[0])}
    assert sorted(set(modules) - listed) == [], "modules missing from docs/architecture.md's module table"
    assert sorted(listed - set(modules)) == [], "docs/architecture.md lists modules that no longer exist"


def test_every_import_is_one_the_architecture_allows():
    where, allowed = layers()
    modules = all_modules()
    wrong = []
    for mod, path in modules.items():
        for target in imports_of(path, modules):
            a, b = where[mod], where[target]
            package = mod.rsplit(".", 1)[0]
            same_room = mod.count(".") > 1 and (package == target.rsplit(".", 1)[0] or target == package)
            if a != b and b not in allowed[a] and not same_room:
                wrong.append(f"{mod} ({a}) imports {target} ({b})")
            elif a == b and a not in allowed[a] and not same_room and not target.startswith(mod + "."):
                wrong.append(f"{mod} imports {target} across rooms of layer {a}")
    assert wrong == [], "\n".join(wrong)


def test_the_import_graph_has_no_cycles_lazy_imports_counted():
    modules = all_modules()
    graph = {m: imports_of(p, modules) for m, p in modules.items()}
    # A package's __init__ re-exporting its own modules is not a cycle of rooms.
    for m in graph:
        graph[m] = {t for t in graph[m] if "." not in m or not t.startswith(m + ".")}
    cycles = [sorted(c) for c in import_graph.strongly_connected(graph) if len(c) > 1]
    assert cycles == []


def _names_the_hub(path: Path) -> bool:
    """Code (not prose) that uses the ``Hub`` class, or takes a ``hub`` parameter to call back into."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "Hub":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "Hub":
            return True
        if isinstance(node, ast.alias) and node.name.split(".")[-1] in ("Hub", "hub"):
            return True
        if isinstance(node, ast.arg) and node.arg == "hub":
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"\w*Hub\w*", node.value):
            return True  # a string annotation
    return False


def test_no_module_below_the_door_names_the_hub():
    where, _ = layers()
    below = [m for m, layer in where.items() if layer not in ("door", "faces")]
    named = [m for m in below if _names_the_hub(all_modules()[m])]
    assert named == [], named
