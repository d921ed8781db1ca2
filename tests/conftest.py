"""Shared fixtures: where the real corpora live (corpus tests fail, never skip, without them)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """``$MOTIF_SHARED_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("MOTIF_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_root()
    if not root.is_dir():
        pytest.fail(f"corpus data not found at {root}; set MOTIF_SHARED_DATA")
    return root
