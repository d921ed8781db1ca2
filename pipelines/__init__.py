"""Beam pipelines (ingest, examples). Importing ``modeling`` first quiets import-time noise."""

import modeling  # noqa: F401
