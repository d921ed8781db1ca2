"""A fresh interpreter for the tests that must not share this process's imports or state.

Tests that check what a module imports, what a killed process leaves behind or how a ``python -m``
entry point answers run ``python`` (the interpreter running the tests, wherever its venv is) with
the repository importable, and read its exit code and output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_python(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd`` with the repository on ``PYTHONPATH`` (plus ``env``), its output
    captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )
