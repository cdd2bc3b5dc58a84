"""The simulators run on gateways: stdlib, pydantic, PyYAML, the core and edge.sources only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "simulators"
ALLOWED = {"pydantic", "yaml", "tonle", "simulators", "edge.sources"}
# session.py is where the simulator plugs into the edge agent (and shows progress);
# fleet.py hands benchmark data to the analytics as arrays, on a server, never a gateway.
PLUGS_INTO_EDGE = {"session.py": {"edge", "rich"}, "fleet.py": {"numpy"}}


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_simulators_import_nothing_but_the_stdlib_pydantic_yaml_the_core_and_edge_sources() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            allowed = (
                module in ALLOWED
                or top in ALLOWED - {"edge.sources"}
                or top in PLUGS_INTO_EDGE.get(path.name, set())
            )
            assert allowed, f"{path.name} imports {module}"


def test_loading_the_simulators_pulls_in_no_server_side_package() -> None:
    check = (
        "import sys, simulators.run; "
        "bad = [m for m in ('psycopg', 'numpy', 'ingest', 'fastapi', 'sklearn', 'paho') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
