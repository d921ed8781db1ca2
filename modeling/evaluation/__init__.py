"""Evaluation stage: a quality report for every registered champion, data against generated music.

    python -m modeling.evaluate --output data/reports [--params params.yaml] [--models a b ...]
        [--examples-root data/examples] [--num-samples N] [--seed S] [--cache DIR] [--quiet]

(``python -m modeling.evaluation`` is the same command; dvc.yaml runs ``modeling.evaluate``.)

How it connects. Models come from the MLflow registry (:mod:`modeling.registry`: every registered
model with the ``evaluate.alias`` alias, ``champion`` by default, loaded with
:func:`~modeling.registry.load_generator_model`). Each variant's example set is the one
``params.yaml`` names (``variants.<name>.example_set`` under ``data/examples``, see
:mod:`modeling.data`), falling back to the set recorded in the model's training config. For every
model the stage computes:

* **held-out metrics** on the set's eval split with the training code's own scorer
  (:func:`modeling.train.evaluate`: loss, perplexity, accuracy, event/no-event accuracy, loss per
  musical unit), and the same on extra eval sets (``evaluate.extra_eval_sets``: cross-corpus
  perplexity, only for sets of the same event space);
* **generated samples** from the one generation engine (:func:`modeling.generate.generate`):
  melodies primed with the first note of eval examples (Magenta primes one middle C, which puts
  every sample of a model without key normalisation in C), lead-sheet melodies over chord
  progressions taken from the eval split, polyphony and performances primed with their first
  chord (a controlled performance with the data's average controls), then each requested
  control unprimed (``evaluate.performance_requests``);
* **musical statistics** (:mod:`modeling.musicstats`) of the samples against the same statistics
  of eval examples decoded by the family (note-seq) and cut to the generated length, and of a
  uniform random model (every stored event equally likely: perplexity = vocabulary size) sampled
  at the same lengths: the baseline a pitch-class histogram must beat;
* **conditioning adherence**: improv chord-tone ratio against the lead sheets', performance note
  density and pitch-class histogram achieved against each request.
* **the quality bar** (:mod:`modeling.quality`, issue 12): every criterion with its value, bar and
  pass, against a Kneser-Ney n-gram fitted on the set's train split (once per set), noise floors
  from windows of the eval split, and time-to-quality from the training run's per-eval clocks;
  the verdict goes onto each evaluated version's model card (``registry.set_quality``).

Outputs in ``--output`` (written to a temporary directory, moved into place only when complete):
``report.md`` (tables + ``figures/*.png``: loss curves from the training runs' MLflow metrics,
histograms data vs generated vs uniform, control requested vs achieved), ``summary.json`` (one
entry per variant plus ``uniform_random``: a DVC metric), ``summary.csv`` (the summary table with
baseline rows) and ``plots/`` CSVs for ``dvc plots``. Bad input is one line and exit 2.

How the package is laid out (each module imports only the ones above it):

* :mod:`~modeling.evaluation.settings`: the ``evaluate:`` params section, constants, ``EvalError``;
* :mod:`~modeling.evaluation.champions`: registry look-ups (champions, loss curves, train time);
* :mod:`~modeling.evaluation.sets`: example sets read once, decoded through the family protocol;
* :mod:`~modeling.evaluation.sampling`: generation requests, the uniform baseline, adherence;
* :mod:`~modeling.evaluation.core`: one model's :class:`~modeling.evaluation.core.Result`;
* :mod:`~modeling.evaluation.summary`, :mod:`~modeling.evaluation.figures`,
  :mod:`~modeling.evaluation.report`: ``summary.json``/CSV, PNG figures, Markdown;
* :mod:`~modeling.evaluation.outputs`: the atomic write of every output and the registry verdicts;
  :mod:`~modeling.evaluation.cache`: per-variant results reused across runs;
* :mod:`~modeling.evaluation.cli`: the stage itself (``run``) and its command line.

Nothing here names a family: everything family-specific (decoding, vocabulary, uniform sampling,
sample lengths, which statistics and criteria apply) is a member of the
:class:`~modeling.families.base.Family` protocol, reached through
:func:`modeling.families.load_family`.
"""
