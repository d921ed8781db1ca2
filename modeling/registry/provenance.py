"""What a training ran on: the example set's data version and the code's git commit.

:meth:`modeling.registry.tracker.Tracker.open` tags each run with both; ``modeling.training``
and ``modeling.evaluation`` call :func:`data_version` to record (and compare) which example set a
model saw. Nothing here imports MLflow.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def data_version(path: str | Path) -> tuple[str, str]:
    """(version, how): DVC's md5 of the directory (``<md5>.dir``, as in ``dvc.lock``) or, if
    dvc_data cannot compute it, ``sha256:<hex>`` over the files' relative paths and bytes."""
    path = Path(path).resolve()
    try:
        from dvc_data.hashfile.build import build
        from dvc_data.hashfile.db import HashFileDB
        from dvc_objects.fs.local import LocalFileSystem
        from dvc_objects.fs.memory import MemoryFileSystem

        odb = HashFileDB(MemoryFileSystem(), "/motif-odb")
        _, _, obj = build(odb, str(path), LocalFileSystem(), "md5", dry_run=True)
        return str(obj.hash_info.value), "dvc-md5"
    except Exception:  # dvc_data is an optional fast path; the fallback is exact too
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(f.relative_to(path)).encode() + b"\0")
            with f.open("rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
        return f"sha256:{h.hexdigest()}", "sha256"


def git_commit() -> tuple[str, bool]:
    """(commit, dirty) of the code that trains; ("unknown", False) outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        return head, bool(status)
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
