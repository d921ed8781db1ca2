"""``python -m modeling.evaluation``: the evaluation stage (same as ``python -m modeling.evaluate``)."""

import sys

from modeling.evaluation.cli import main

sys.exit(main())
