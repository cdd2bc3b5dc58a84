"""The parts import the core and themselves, never each other (AST check, no imports run).

Allowed exceptions: the composition root ``tonle.cli`` reaches into every part, and the
simulators plug into the edge agent as a source. The core outside ``tonle.cli`` imports
no part at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = {"edge", "ingest", "simulators", "analytics", "api", "dashboards"}
ALLOWED = {"simulators": {"edge"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("part", sorted(p for p in PARTS if (ROOT / p).is_dir()))
def test_parts_do_not_import_each_other(part: str) -> None:
    for path in _modules(part):
        others = (_imports(path) & PARTS) - {part} - ALLOWED.get(part, set())
        assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}"


def test_core_imports_no_part_outside_the_command() -> None:
    for path in _modules("tonle"):
        if "cli" in path.relative_to(ROOT / "tonle").parts:
            continue
        assert not (_imports(path) & PARTS), f"{path.relative_to(ROOT)} imports a part"


def test_the_command_imports_parts_lazily() -> None:
    """Module-level imports of the command touch no part, so `tonle edge` stays light."""
    for path in [ROOT / "tonle" / "cli" / "__init__.py"]:
        tree = ast.parse(path.read_text("utf-8"))
        top = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                top.add(node.module.split(".")[0])
        assert not (top & PARTS), f"{path.name} imports {sorted(top & PARTS)} at module level"
