"""``python -m modeling.registry``: the listing CLI (:func:`modeling.registry.cli.main`)."""

import sys

from modeling.registry.cli import main

sys.exit(main())
