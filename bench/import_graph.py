"""The package's import graph as floors and arrows: how many floors, which arrows close a cycle.

Every import counts, lazy ones (inside functions, under ``TYPE_CHECKING``) included. A
*room* is a module at the package's top level or a whole subpackage; rooms are put on
floors by the longest chain of imports beneath them, after each cycle is merged into one
node, so every arrow between floors points down and the arrows that "run back up" are
exactly those inside a cycle.

    python bench/import_graph.py                 # the working tree
    python bench/import_graph.py --rev 914a892   # any commit, read through git
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
            names = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != me:
                found.add(name)
    return found


def room_of(module: str, package: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else package + " (top)"


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[set[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def floors(graph: dict[str, set[str]]) -> tuple[dict[str, int], list[set[str]], int]:
    """Floor of each node (1 = imports nothing of ours), the cycles, and the arrows inside them."""
    comps = strongly_connected(graph)
    comp_of = {v: i for i, c in enumerate(comps) for v in c}
    level: dict[int, int] = {}

    def floor_of(i: int) -> int:
        if i not in level:
            below = {comp_of[w] for v in comps[i] for w in graph[v]} - {i}
            level[i] = 1 + max((floor_of(j) for j in below), default=0)
        return level[i]

    cycles = [c for c in comps if len(c) > 1]
    inside = sum(1 for v in graph for w in graph[v] if comp_of[v] == comp_of[w])
    return {v: floor_of(comp_of[v]) for v in graph}, cycles, inside


def report(src: Path, package: str = "n2n_hub") -> str:
    pkg = src / package
    paths = sorted(pkg.rglob("*.py"))
    modules = {module_name(p, src) for p in paths}
    graph = {module_name(p, src): imports(p, src, modules) for p in paths}
    # a package's __init__ re-exporting its own modules is not an arrow between rooms
    graph = {m: {t for t in ts if "." not in m or not t.startswith(m + ".")} for m, ts in graph.items()}
    rooms: dict[str, set[str]] = defaultdict(set)
    for m, ts in graph.items():
        rooms[room_of(m, package)] |= {room_of(t, package) for t in ts} - {room_of(m, package)}
    lines = []
    for what, g in (("modules", graph), ("rooms", dict(rooms))):
        level, cycles, inside = floors(g)
        arrows = sum(len(ts) for ts in g.values())
        lines.append(f"{what}: {len(g)}, arrows {arrows}, floors {max(level.values(), default=0)}, "
                     f"cycles {len(cycles)}, arrows that run back up (inside a cycle) {inside}")
        for c in cycles:
            lines.append("  cycle: " + ", ".join(sorted(c)))
        if what == "rooms":
            for f in range(max(level.values(), default=0), 0, -1):
                on = sorted(r.removeprefix(package + ".") for r, lv in level.items() if lv == f)
                lines.append(f"  floor {f:2d}: {' '.join(on)}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", help="a git revision to read instead of the working tree")
    args = ap.parse_args()
    if args.rev is None:
        print(report(ROOT))
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.rev, "n2n_hub"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        print(report(Path(tmp)))


if __name__ == "__main__":
    main()
