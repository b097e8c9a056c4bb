"""The import direction: policybot -> handlers -> bot -> knowledge, and no cycle between modules.

Every import of every module counts, including imports inside functions (they would only hide a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("policybot", "handlers", "bot", "knowledge")
# What each layer may import from the project (itself included); anything above it is forbidden.
ALLOWED = {
    "policybot": {"policybot", "handlers", "bot", "knowledge"},
    "handlers": {"handlers", "bot", "knowledge"},
    "bot": {"bot", "knowledge"},
    "knowledge": {"knowledge"},
}
# Channel libraries belong to the adapters: the core and the knowledge base never touch them.
CHANNEL_LIBRARIES = ("telegram", "aiohttp", "wechatpy")


def modules() -> dict[str, Path]:
    """Every module of the four packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """The absolute names a module imports (relative imports resolved), anywhere in its body."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def project_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    mods = modules()
    return {
        name: {i for i in imports_of(name, path) if i in mods and i != name} for name, path in mods.items()
    }


def test_layers_import_downwards_only() -> None:
    mods = modules()
    bad = []
    for name, path in mods.items():
        layer = name.split(".")[0]
        for imported in imports_of(name, path):
            top = imported.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[layer]:
                bad.append(f"{name} imports {imported}")
    assert bad == []


def test_core_and_knowledge_use_no_channel_library() -> None:
    bad = [
        f"{name} imports {imported}"
        for name, path in modules().items()
        if name.split(".")[0] in ("bot", "knowledge")
        for imported in imports_of(name, path)
        if imported.split(".")[0] in CHANNEL_LIBRARIES
    ]
    assert bad == []


def test_no_import_cycle() -> None:
    graph = project_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_the_guard_sees_a_cycle_and_a_wrong_direction(tmp_path: Path) -> None:
    """The checks above can fail: a handler import in the core is found by ``imports_of``."""
    source = tmp_path / "app.py"
    source.write_text("def f():\n    from handlers.web import start_web\n", encoding="utf-8")
    assert "handlers.web" in imports_of("bot.app", source)
    relative = tmp_path / "x.py"
    relative.write_text("from .conversation import Conversations\n", encoding="utf-8")
    assert "bot.conversation" in imports_of("bot.x", relative)
