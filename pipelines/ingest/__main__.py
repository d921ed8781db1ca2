"""``python -m pipelines.ingest``: runs :func:`pipelines.ingest.cli.main`.

The records and DoFns live in the package's modules, never in ``__main__``, so Beam workers in
other processes can unpickle them by their real names.
"""

import sys

from pipelines.ingest.cli import main

if __name__ == "__main__":
    sys.exit(main())
