"""The import direction of docs/architecture.md, checked on the source (every import statement,
including function-local ones and those under ``if TYPE_CHECKING:``).

Packages, top to bottom: ``cli -> localnet -> node -> rpc, state, consensus -> primitives``, and
the typed client beside ``node``: ``cli`` and ``localnet`` import ``client``, which imports ``rpc``
(its transport), ``state`` (tx builders and codes) and ``primitives``; nothing else imports it. A
package imports only packages below it; ``rpc`` and ``state`` know nothing of consensus, only the
shared primitives. No two modules import each other in a circle, except the circles listed in
``PENDING_CIRCLES``, each a known piece of work (and the list may only shrink: an entry whose
circle is gone fails the test until it is removed).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cli", "localnet", "client", "node", "rpc", "state", "consensus", "primitives")

MAY_IMPORT = {
    "cli": {"localnet", "client", "node", "rpc", "state", "consensus", "primitives"},
    "localnet": {"client", "node", "rpc", "state", "consensus", "primitives"},
    "client": {"rpc", "state", "primitives"},
    "node": {"rpc", "state", "consensus", "primitives"},
    "rpc": {"primitives"},
    "state": {"primitives"},
    "consensus": {"primitives"},
    "primitives": set(),
}

PENDING_CIRCLES: list[set[str]] = []
"""Circles known and scheduled for removal (none today: the last two, the clearing steps <->
the app and the simulator's world <-> node <-> byzantine, went with state/env.py's BlockEnv
and consensus/simulation/node.py's WorldView)."""


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of one of our packages."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import module`` imports that module; ``from module import name`` the module.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PACKAGES:
                yield target, node.lineno


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _ in _imports(name, path):
            resolved = target
            while resolved not in MODULES and "." in resolved:
                resolved = resolved.rpartition(".")[0]
            if resolved in MODULES and resolved != name:
                graph[name].add(resolved)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_packages_import_only_downwards() -> None:
    wrong = []
    for name, path in MODULES.items():
        mine = name.split(".")[0]
        for target, line in _imports(name, path):
            theirs = target.split(".")[0]
            if theirs == mine:
                continue
            if theirs not in MAY_IMPORT[mine]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} ({mine} -> {theirs})")
    assert not wrong, "imports against the direction of docs/architecture.md:\n" + "\n".join(wrong)


def test_every_import_of_ours_names_a_module_that_exists() -> None:
    """A module moved (say, from consensus/ to primitives/) leaves no import of its old name."""
    missing = sorted({f"{path.relative_to(ROOT)}:{line} imports {target}"
                      for name, path in MODULES.items() for target, line in _imports(name, path)
                      if target not in MODULES})
    assert not missing, "imports of modules that do not exist:\n" + "\n".join(missing)


def test_no_new_import_circles() -> None:
    circles = _circles(_graph())
    new = [sorted(c) for c in circles if c not in PENDING_CIRCLES]
    assert not new, f"modules that import each other in a circle: {new}"
    gone = [sorted(c) for c in PENDING_CIRCLES if c not in circles]
    assert not gone, f"circles listed as pending that no longer exist (remove them): {gone}"


def test_the_checker_sees_a_circle_and_a_wrong_direction() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert "node.chain" in _graph()["node.api"]  # imports are read, ``from x import y`` too
    assert "rpc" not in MAY_IMPORT["state"] and "node" not in MAY_IMPORT["rpc"]
