"""The library and the project are `ruff` clean (pyproject.toml: [tool.ruff]; ruff is in the test extra)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "mliplib", "zno_book"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
