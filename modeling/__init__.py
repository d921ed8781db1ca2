"""Quiet two import-time messages that say nothing about motif's work.

note-seq imports pydub, which warns that ffmpeg is missing (motif never decodes audio through it);
Apache Beam logs that Google Cloud client libraries are absent (motif does not need them).
"""

import logging
import warnings

warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv")
logging.getLogger().addFilter(lambda record: "apitools not found" not in record.getMessage())
