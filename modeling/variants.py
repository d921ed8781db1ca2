"""One lookup for every trainable variant, merged from the family modules' ``VARIANTS``.

Each family module (``modeling/families/{melody,improv,polyphony,performance}.py``) exposes
``VARIANTS: dict[str, VariantConfig]``; training (``--variant NAME``), the registry (a registered
model per variant) and generation resolve names here, so a variant name is unique across families.

A family module that fails to import is recorded in :data:`FAMILY_ERRORS` and named in the
unknown-variant message instead of breaking every other family.
"""

from __future__ import annotations

import importlib

from modeling.families import FAMILY_MODULES
from modeling.families.base import VariantConfig

FAMILY_ERRORS: dict[str, str] = {}
"""family -> one-line import error of a family module that exists but failed to import."""


class UnknownVariantError(KeyError):
    """``--variant`` names no variant; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _load() -> dict[str, VariantConfig]:
    merged: dict[str, VariantConfig] = {}
    for family, module_name in FAMILY_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a broken family must not hide the others
            FAMILY_ERRORS[family] = f"{type(exc).__name__}: {exc}"
            continue
        for name, cfg in getattr(module, "VARIANTS", {}).items():
            if name in merged:
                raise RuntimeError(
                    f"variant {name!r} defined by both {merged[name].family} and {cfg.family}"
                )
            if name != cfg.name:
                raise RuntimeError(
                    f"{module_name}.VARIANTS key {name!r} != config name {cfg.name!r}"
                )
            merged[name] = cfg
    return merged


VARIANTS: dict[str, VariantConfig] = _load()


def variant_names() -> list[str]:
    """Sorted names of every known variant."""
    return sorted(VARIANTS)


def get_variant(name: str) -> VariantConfig:
    """The variant ``name``; :class:`UnknownVariantError` listing the valid ones otherwise."""
    try:
        return VARIANTS[name]
    except KeyError:
        msg = f"unknown variant {name!r}; valid: {', '.join(variant_names()) or '(none)'}"
        if FAMILY_ERRORS:
            broken = "; ".join(f"{f}: {e}" for f, e in sorted(FAMILY_ERRORS.items()))
            msg += f" (families that failed to import: {broken})"
        raise UnknownVariantError(msg) from None
