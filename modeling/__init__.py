"""Quiet two import-time messages that say nothing about motif's work.

note-seq imports pydub, which warns that ffmpeg is missing (motif never decodes audio through it);
Apache Beam logs that Google Cloud client libraries are absent (motif does not need them).

Every stage imports this module first (``pipelines/__init__`` imports it too), so it also holds
the few dependency-free helpers all packages share: :func:`first_line`.
"""

import logging
import warnings

warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv")
logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())


def quiet_libraries() -> None:
    """For the CLIs: torch's user warnings and the INFO chatter of MLflow's store (alembic
    migrations, git lookups) hide what the command itself says."""
    import os

    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    for name in ("mlflow", "alembic", "alembic.runtime.migration", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def first_line(error: object, default: str | None = None) -> str:
    """The first line of ``str(error)`` (leading whitespace dropped), else ``default``, else the
    error's type name: messages show one line, not a library's multi-line text or traceback."""
    lines = str(error).strip().splitlines()
    if lines:
        return lines[0]
    return type(error).__name__ if default is None else default
