"""The readers' library log lines, counted per parse instead of printed.

``parse.parse_file`` wraps each file in :func:`counting_log_lines` and stores the counts in
``FileResult.log_messages``; the ingest metrics sum them.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

_LOG_COUNTS = threading.local()  # the current parse's counter, per thread
_LOG_PLACEHOLDER = re.compile(r"\s*%[-#0 +]*\d*(?:\.\d+)?[sdrfgixXe]")


def _log_template(record: logging.LogRecord) -> str:
    """The message's wording without its arguments: one key per kind of log line."""
    text = _LOG_PLACEHOLDER.sub("", str(record.msg)).strip(" :")
    return f"{record.levelname.lower()}: {text[:120]}"


class _CountLogLines(logging.Filter):
    """Swallows and counts the log lines of a parse in progress on this thread.

    note-seq logs through absl one line per oddity, e.g. ``Unknown field name`` for every
    unknown ABC header field of every tune: hundreds of stderr lines for one tunebook. The
    outcomes are already accounted for per file, so the lines become counts (``FileResult``
    ``log_messages``, summed in the ingest metrics). Outside a parse, lines pass untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        counts: Counter[str] | None = getattr(_LOG_COUNTS, "counts", None)
        if counts is None:
            return True
        counts[_log_template(record)] += 1
        return False


_LOG_FILTER = _CountLogLines()
QUIETED_LOGGERS = ("absl",)  # where note-seq's readers log


@contextmanager
def counting_log_lines() -> Iterator[Counter[str]]:
    """Count (and silence) the readers' log lines on this thread while the block runs."""
    for name in QUIETED_LOGGERS:
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)
    counts: Counter[str] = Counter()
    outer = getattr(_LOG_COUNTS, "counts", None)
    _LOG_COUNTS.counts = counts
    try:
        yield counts
    finally:
        _LOG_COUNTS.counts = outer
