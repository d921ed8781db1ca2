"""``python -m modeling.evaluate``: the evaluation stage's entry point, as dvc.yaml runs it.

The stage lives in the package :mod:`modeling.evaluation` (settings, champions, sets, sampling,
core, summary, figures, report, outputs, cache, cli); this module only starts its command line,
so the stage keeps its name and its import closure (the result cache's code key) starts here.
"""

import sys

from modeling.evaluation.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
