"""No import circles inside `src/fakescope` (issue 19), and every import allowed by the layer
table in `docs/architecture.md`, so that the layers stay layers and the map stays true.

The graph is read from the source with `ast`, without importing anything:

- every `import` and `from ... import` counts, wherever it stands: at module level and inside
  functions (a lazy import is still a dependency; it only changes *when* the circle bites), with
  relative imports resolved against the importing module's package;
- `from fakescope.pkg import name` points at the submodule `fakescope.pkg.name` when there is
  one, else at the package `fakescope.pkg` itself (its `__init__` provides `name`); so a package
  `__init__` that re-exports a submodule, and a submodule that imports from the package, are a
  circle: submodules import their siblings directly;
- not counted: imports under `if TYPE_CHECKING:` (they never run), and the parent packages that
  Python initialises on the way to a module (`import fakescope.a.b` runs `fakescope/__init__`
  and `fakescope/a/__init__`; counting those would make every package a circle with its own
  `__init__`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "fakescope"


def module_files(root: Path = SRC / PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = f
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            name = t.id if isinstance(t, ast.Name) else getattr(t, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skip.update(id(n) for n in ast.walk(child))
    return skip


def imports_of(name: str, file: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` (in `file`) imports, by the rules above."""
    tree = ast.parse(file.read_text(), str(file))
    skip = _type_checking_nodes(tree)
    is_pkg = file.name == "__init__.py"
    here = name if is_pkg else name.rpartition(".")[0]  # the package relative imports start at
    found: set[str] = set()

    def add(target: str) -> None:
        # the longest prefix that is a module of ours (`fakescope.x.func` -> `fakescope.x`)
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                add(sub if sub in modules else mod)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, f, modules) for name, f in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Circles as paths `a -> b -> ... -> a`: for every strongly connected component with more
    than one module (Tarjan), the shortest circle through each of its modules, without repeats."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def strongconnect(v: str) -> None:  # recursive: the graph has ~70 nodes
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    cycles, seen = [], set()
    for comp in components:
        for start in sorted(comp):
            c = _shortest_cycle(graph, comp, start)
            key = frozenset(zip(c, c[1:], strict=False))
            if key not in seen:
                seen.add(key)
                cycles.append(c)
    return cycles


def _shortest_cycle(graph: dict[str, set[str]], comp: set[str], start: str) -> list[str]:
    """The shortest circle from `start` back to it inside a component (breadth-first)."""
    prev: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    raise AssertionError("every module of a strongly connected component is on a circle")


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "fakescope.detector" in graph and len(graph) > 30
    assert "fakescope.detector" in graph["fakescope"]  # the lazy `Detector` import counts


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles in src/fakescope:\n" + "\n".join(
        "  " + " -> ".join(c) for c in cycles
    )


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


ARCHITECTURE = SRC.parent / "docs" / "architecture.md"


def layer_table() -> list[tuple[list[str], set[str]]]:
    """docs/architecture.md's table: (the row's modules, the modules it may import), bottom up.
    `foundations` names the first row's modules, `everything above` every earlier row's."""
    rows: list[tuple[list[str], set[str]]] = []
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([\w.]+)`", re.sub(r"\([^)]*\)", "", cells[0]))
        allowed_text = re.sub(r"\([^)]*\)", "", cells[2])  # a parenthesis only explains
        allowed = set(re.findall(r"`([\w.]+)`", allowed_text))
        if "foundations" in allowed_text:
            allowed |= set(rows[0][0])
        if "everything above" in allowed_text:
            allowed |= {n for r, _ in rows for n in r}
        rows.append((names, allowed | set(names)))
    return rows


def _group(module: str) -> str:
    """`fakescope.training.loop` -> `training`; the package itself -> `fakescope`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_the_architecture_table_covers_the_tree():
    rows = layer_table()
    listed = [n for names, _ in rows for n in names]
    groups = {_group(m) for m in module_files()}
    assert len(listed) == len(set(listed)), "a module is in two rows of docs/architecture.md"
    assert groups - set(listed) == set(), "modules missing from docs/architecture.md"
    assert set(listed) - groups == set(), "docs/architecture.md names modules that do not exist"


def test_imports_follow_the_architecture_table():
    allowed = {n: ok for names, ok in layer_table() for n in names}
    wrong = sorted(
        f"{a} imports {b}"
        for a, targets in import_graph().items()
        for b in targets
        if _group(b) not in allowed[_group(a)]
    )
    assert not wrong, "imports that docs/architecture.md does not allow:\n  " + "\n  ".join(wrong)
