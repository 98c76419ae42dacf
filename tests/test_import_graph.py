"""No import circles between the project's modules.

Every .py file of the packages below is parsed (nothing is imported) and every import in it,
at module level and inside functions alike, becomes an edge to the project module it names:
`import a.b` -> a.b; `from a import b` -> a.b when a/b is a module, else a (b is a name defined
in a); relative imports are resolved against the file's package. Importing a.b also runs a's
__init__, but that implicit edge is left out: it is what every package does and not a circle a
reader has to follow. A circle is a strongly connected component of that graph.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "lrgan", "stackgan", "acvae", "rpgan")

# Circles known outside stackgan/, each the full set of modules of one component. They are
# allowed until someone breaks them; then the entry must go (test_allowed_circles_still_exist).
# Empty this list as they are fixed; a stackgan module must never appear here.
ALLOWED: list[frozenset[str]] = [
]


def module_files() -> dict[str, Path]:
    """{dotted module name: file} for every .py file of PACKAGES (a package is its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, modules: set[str]) -> set[str]:
    """The project modules that module `name` (file `path`) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}" if base else alias.name
                targets.add(sub if sub in modules else base)
    return {t for t in targets if t in modules and t != name}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported(name, path, set(files)) for name, path in files.items()}


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == node:
                            break
                    if len(members) > 1:
                        found.append(sorted(members))
    return found


def one_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """A concrete circle a -> b -> ... -> a inside one component, for the failure message."""
    inside = set(members)
    start = members[0]
    paths = {start: [start]}
    queue = [start]
    while queue:                  # breadth first: the shortest way back to the start
        node = queue.pop(0)
        for nxt in sorted(graph[node] & inside):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return members


def test_the_graph_sees_function_level_and_submodule_imports():
    graph = import_graph()
    assert "common.models" in graph and "stackgan.v2.trainer" in graph
    # `from stackgan.v2 import losses` is an edge to the submodule, not to the package
    assert "stackgan.v2.losses" in graph["stackgan.v2.trainer"]
    assert "common.trainer" in graph["common.train"]


def test_no_import_circles():
    graph = import_graph()
    circles = [c for c in components(graph) if frozenset(c) not in ALLOWED]
    assert not circles, "import circles: " + "; ".join(
        " -> ".join(one_cycle(graph, c)) + f" (component: {', '.join(c)})" for c in circles)


def test_allowed_circles_still_exist_and_none_is_in_stackgan():
    found = {frozenset(c) for c in components(import_graph())}
    stale = [sorted(a) for a in ALLOWED if a not in found]
    assert not stale, f"these ALLOWED circles are gone; remove them from the list: {stale}"
    assert not [a for a in ALLOWED if any(m.startswith("stackgan") for m in a)]
