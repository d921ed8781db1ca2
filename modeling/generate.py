"""``python -m modeling.generate``: the generation CLI (dvc.yaml's generate stages call it).

The code lives in :mod:`modeling.generation` by responsibility; this module is the stable entry
point and keeps the names other modules import from it (``modeling.batch``, ``modeling.evaluate``,
``modeling.pyfunc_model``, ``bench.generate``, the studio and the tests).
"""

from __future__ import annotations

import sys

from modeling.generation.cli import AUDIO_FORMATS, build_parser, main, request_from_args, run
from modeling.generation.engine import Engine, _feature_window, _gumbel, build_plan, generate
from modeling.generation.loading import apply_hparams, load_model
from modeling.generation.outputs import model_record, output_stem, sample_record, write_outputs
from modeling.generation.plan import Plan, Sample
from modeling.generation.plan import key_transposition as _key_transposition
from modeling.generation.request import DEFAULT_BACKING_CHORDS, GenerateError, Request
from modeling.music import STEPS_PER_BAR
from modeling.primers import RequestError

__all__ = [
    "AUDIO_FORMATS",
    "DEFAULT_BACKING_CHORDS",
    "STEPS_PER_BAR",
    "Engine",
    "GenerateError",
    "Plan",
    "Request",
    "RequestError",
    "Sample",
    "_feature_window",
    "_gumbel",
    "_key_transposition",
    "apply_hparams",
    "build_parser",
    "build_plan",
    "generate",
    "load_model",
    "main",
    "model_record",
    "output_stem",
    "request_from_args",
    "run",
    "sample_record",
    "write_outputs",
]

if __name__ == "__main__":
    sys.exit(main())
