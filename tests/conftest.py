"""Shared fixtures: where the real corpora live.

Corpus tests (marked ``corpus``) read ``$MOTIF_SHARED_DATA``, else ``../shared/data`` beside the
checkout, else the folders ``motif corpora fetch`` writes (``data/corpora``). Without any of them
they skip with one line saying how to get the corpora; with ``MOTIF_REQUIRE_CORPORA=1`` (set by
``.ci/run``) they fail instead, so CI never skips them.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("openewld", "edm", "pop909", "asap")


def shared_data_root() -> Path:
    """``$MOTIF_SHARED_DATA``, else ``../shared/data``, else the fetched ``data/corpora``."""
    env = os.environ.get("MOTIF_SHARED_DATA")
    if env:
        return Path(env)
    shared = REPO.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return REPO / "data" / "corpora"


def corpora_required() -> bool:
    return os.environ.get("MOTIF_REQUIRE_CORPORA", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_root()
    missing = [c for c in CORPORA if not (root / c).is_dir()]
    if missing:
        message = (
            f"corpora {', '.join(missing)} not found under {root}: get them with "
            "`.venv/bin/motif corpora fetch all` (or set MOTIF_SHARED_DATA to a copy)"
        )
        if corpora_required():
            pytest.fail(f"MOTIF_REQUIRE_CORPORA is set and {message}", pytrace=False)
        pytest.skip(message)
    return root
