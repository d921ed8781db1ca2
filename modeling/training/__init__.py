"""The one training loop for every variant, split by responsibility.

``python -m modeling.train`` (:mod:`modeling.train`, a thin entry that re-exports these names) runs
:func:`cli.main`, which chains the parts:

- :mod:`.cli`: the flags (:func:`~.cli.build_parser`) and ``main``: parse, join the process group,
  :func:`~.spec.prepare`, :func:`~.loop.train`, print the final metrics.
- :mod:`.spec`: every input validated before anything is written (``--params`` defaults, variant,
  hparams, example set, ``--init-from``, resume checkpoint and resume store) into a
  :class:`~.spec.RunSpec`.
- :mod:`.distributed`: this process's place in a (torchrun) run, device choice, per-step seeds.
- :mod:`.metrics`: the :class:`~.metrics.Scorer` (loss and Magenta's metrics of one batch, the
  family supplying its default event and musical unit) and :func:`~.metrics.evaluate`.
- :mod:`.loop`: the steps of a run (restore, step, evaluate, checkpoint, finish).
- :mod:`.outputs`: metrics.json, loss_curve.csv/png, the progress bar and messages.
"""

import os

# OpenMP (libgomp) workers spin only briefly before sleeping while they wait for work. On this
# 2-core machine, shared with other stages, the default 300k-spin wait collapses under load;
# basic_rnn steps/s at 2 threads measured here: quiet 1.01 (2k spins) / 0.88 (passive) / 1.00
# (active); with 3 CPU hogs 0.37 (2k) / 0.38 (passive) / 0.17 (default). Must precede the torch
# import (every submodule imports this package first); an explicit OMP_WAIT_POLICY or
# GOMP_SPINCOUNT in the environment wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "2000")
