"""The layout's figures: files per folder, the longest modules and functions, the import floors
and any cycle between modules (every import, lazy ones inside functions too; not those under
`if TYPE_CHECKING:`). Run from the repository: `.venv/bin/python bench/layout_figures.py`.
"""

from __future__ import annotations

import ast
import collections
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("spool", "runner", "house", "report", "service")


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def functions(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    rel = path.relative_to(ROOT)
    return [
        (node.end_lineno - node.lineno + 1, f"{rel}:{node.name}")
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None
    ]


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return out


def floors(graph: grimp.ImportGraph, prefix: str) -> tuple[int, int]:
    """(modules in `prefix`, the longest chain of imports that stays inside it)."""
    own = {m for m in graph.modules if m.startswith(prefix + ".")}
    memo: dict[str, int] = {}

    def depth(m: str, seen: tuple[str, ...] = ()) -> int:
        if m in memo:
            return memo[m]
        if m in seen:
            return 0
        deps = [w for w in graph.find_modules_directly_imported_by(m) if w in own and w != m]
        memo[m] = 1 + max((depth(w, (*seen, m)) for w in deps), default=0)
        return memo[m]

    return len(own), max((depth(m) for m in own), default=0)


def main() -> int:
    files = sources()
    per = collections.Counter(str(p.parent.relative_to(ROOT)) for p in files)
    print("files per folder:", ", ".join(f"{d} {n}" for d, n in sorted(per.items())))
    sizes = sorted(((sum(1 for _ in p.open()), str(p.relative_to(ROOT))) for p in files), reverse=True)
    print("modules over 400 lines:", ", ".join(f"{m} {n}" for n, m in sizes if n > 400) or "none")
    funcs = sorted((f for p in files for f in functions(p)), reverse=True)
    print("longest functions:", ", ".join(f"{name} {n}" for n, name in funcs[:8]))
    print("functions over 80 lines:", ", ".join(f"{name} {n}" for n, name in funcs if n > 80) or "none")
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False, exclude_type_checking_imports=True)
    found = cycles(graph)
    print("module cycles:", "; ".join(" <-> ".join(c) for c in found) if found else "none")
    for prefix in ("runner", "runner.core", "runner.machine", "runner.pins", "runner.warm", "house"):
        n, f = floors(graph, prefix)
        print(f"{prefix}: {n} modules, longest import chain inside it: {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
