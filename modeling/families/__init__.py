"""The model families, looked up by name.

Each family is one package (``melody``, ``improv``, ``polyphony``, ``performance``) implementing the
``Family`` protocol of :mod:`modeling.families.base`. Packages are imported lazily so that a Beam
worker extracting melodies never imports the performance code.

Every family package is laid out the same way: modules by responsibility (extraction, encoding,
decoding; each package's docstring lists its own); an ``__init__`` that exposes the ``Family``
protocol and nothing else (helpers are imported from the module that defines them);
``variants`` with the family's :data:`VARIANTS` table (built with
:func:`~modeling.families.base.variant_table`); and the ``Family`` protocol's hooks in
``training``, ``evaluation`` and ``generation``, imported on first use by the package's module
``__getattr__`` (with a plain ``from`` import, which :mod:`pipelines.stagedeps` reads) so that a
Beam worker never loads them. Shared by several families: :mod:`~modeling.families.onehot`
(Magenta's plain one-hot), :mod:`~modeling.families.extra` (Magenta's encoding plus input
columns a small LSTM forgets: performance's held notes, polyphony's step context) and
:mod:`~modeling.families.chords`.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType
from typing import Any

FAMILY_MODULES = {
    "melody": "modeling.families.melody",
    "improv": "modeling.families.improv",
    "polyphony": "modeling.families.polyphony",
    "performance": "modeling.families.performance",
}


def load_family(name: str) -> ModuleType:
    """The family module called ``name``; ``KeyError`` naming the valid families otherwise."""
    if name not in FAMILY_MODULES:
        raise KeyError(f"unknown family {name!r}; valid: {', '.join(FAMILY_MODULES)}")
    return importlib.import_module(FAMILY_MODULES[name])


def extract_config(family: ModuleType, overrides: dict[str, Any] | None = None) -> Any:
    """The family's extraction config (Magenta's defaults) with ``overrides`` applied.

    Unknown keys raise ``KeyError`` naming the valid ones, so a typo in params.yaml is caught
    before any work starts.
    """
    cls = family.EXTRACT_CONFIG
    valid = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(set(overrides or {}) - valid)
    if bad:
        raise KeyError(
            f"unknown {family.NAME} extraction param(s) {', '.join(bad)}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    values = {}
    for key, value in (overrides or {}).items():
        default = getattr(cls, key, None)
        values[key] = tuple(value) if isinstance(default, tuple) and value is not None else value
    return cls(**values)
