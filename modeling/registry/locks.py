"""Lock files beside a local sqlite store: the one guard several processes on one machine share.

:func:`modeling.registry.store.client` creates a fresh store under ``<db>.init.lock``, and
:func:`modeling.registry.gate.register` serialises the champion gate of one registered model
under ``<db>.gate.<name>.lock`` (:func:`gate_lock_path`). A store that is not a local file (an
MLflow server, a remote database) has no lock MLflow could share: the gate then uses
compare-and-set on the alias instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, required: bool = True) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); the kernel drops it when the
    holder dies, even by ``kill -9``. Not re-entrant: never nest two holds of one path.

    ``required=False`` (read-only lookups) goes on unlocked where the lock file cannot be opened,
    e.g. a read-only store, which nobody can be creating.
    """
    try:
        fh = path.open("a")
    except OSError:
        if required:
            raise
        yield
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def gate_lock_path(db: Path, name: str) -> Path:
    """The gate's lock file of registered model ``name`` beside database ``db`` (one per model,
    so gates of different variants never wait on each other)."""
    return db.with_name(f"{db.name}.gate.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock")
