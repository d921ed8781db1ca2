"""Generation, by responsibility (``python -m modeling.generate`` is the entry point).

* :mod:`~modeling.generation.units`: how a family counts length (``GENERATION_UNITS``).
* :mod:`~modeling.generation.request`: :class:`Request`, its structured
  :class:`GenerateError` and every rule that checks a request, each written once.
* :mod:`~modeling.generation.plan`: the :class:`Plan` a family module's ``generation_plan``
  builds, the :class:`Sample` the engine returns, helpers plans share.
* :mod:`~modeling.generation.engine`: the one batched sampling / beam-search loop, and
  :func:`build_plan` / :func:`generate`, which reach the family only through
  :func:`modeling.families.load_family`.
* :mod:`~modeling.generation.loading`: registry / checkpoint models and ``--hparams``.
* :mod:`~modeling.generation.outputs`: file names, the one per-sample JSON record (shared with the
  studio) and the all-or-nothing writer.
* :mod:`~modeling.generation.cli`: the flags, request parsing and the command itself.

This package imports nothing on import: family modules import :mod:`.units` while a Beam worker
extracts examples, without torch.
"""
