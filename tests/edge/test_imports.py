"""The edge agent stays light: importing it loads nothing of the server side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["psycopg", "sklearn", "fastapi", "numpy", "pandas", "ingest", "simulators", "analytics"]


def test_the_edge_modules_load_no_server_side_package() -> None:
    code = (
        "import json, sys\n"
        "import edge.agent, edge.config, edge.mqtt, edge.spool, edge.batching, edge.publisher\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == []
