"""The ``evaluate:`` section of params.yaml, checked, and the stage's constants.

Every other evaluation module reads its choices from :class:`Settings`; :class:`EvalError` is
the stage's one kind of user-fixable failure (a :class:`modeling.cli.UsageError`: one line,
exit 2, nothing written).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeling import first_line
from modeling.cli import UsageError
from modeling.music import DEFAULT_QPM

DEFAULT_OUTPUT = "data/reports"
QPM = DEFAULT_QPM  # generation's default tempo; eval examples are decoded at the same tempo
SECONDS_PER_STEP = 60.0 / QPM / 4  # one 16th note
DEFAULT_REQUESTS: tuple[dict[str, Any], ...] = (
    {"notes_per_second": 2.0},
    {"notes_per_second": 8.0},
    {"pitch_class_histogram": [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1]},  # C major scale
    {"pitch_class_histogram": [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1]},  # F# major scale
)
METRIC_KEYS = (
    "loss",
    "perplexity",
    "accuracy",
    "event_accuracy",
    "no_event_accuracy",
    "loss_per_step",
)
OUTPUT_ITEMS = ("report.md", "summary.json", "summary.csv", "figures", "plots")
"""What the stage owns inside ``--output`` (replaced as a whole; anything else is left alone)."""


class EvalError(UsageError, ValueError):
    """Bad input (params, names, missing sets or store): one line, exit 2, nothing written."""


@dataclass(frozen=True)
class Settings:
    """The ``evaluate:`` section of params.yaml with its defaults (the stage runs without it)."""

    alias: str = "champion"
    models: tuple[str, ...] = ()
    examples_root: Path = Path("data/examples")
    num_samples: int = 32
    improv_progressions: int = 8
    temperature: float = 1.0
    seed: int = 1234
    batch_size: int = 64
    data_samples: int = 64
    melody_steps: int = 64
    polyphony_steps: int = 64
    performance_seconds: float = 10.0
    density_tolerance: float = 0.2
    extra_eval_sets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    performance_requests: tuple[dict[str, Any], ...] = DEFAULT_REQUESTS
    variant_sets: Mapping[str, str] = field(default_factory=dict)
    profile: str = ""


def _number(
    section: Mapping[str, Any],
    key: str,
    default: float,
    *,
    integer: bool,
    low: float,
    high: float = math.inf,
) -> Any:
    value = section.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not (low <= float(value) <= high) or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a number"
        bound = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise EvalError(f"params evaluate.{key}: expected {kind} {bound}, got {value!r}")
    return int(value) if integer else float(value)


def check_request(item: Any, where: str) -> dict[str, Any]:
    """One performance control request: ``notes_per_second`` > 0 and/or a 12-value histogram."""
    if not isinstance(item, Mapping) or not item:
        raise EvalError(
            f"{where}: expected a mapping with notes_per_second and/or "
            f"pitch_class_histogram, got {item!r}"
        )
    unknown = sorted(set(item) - {"notes_per_second", "pitch_class_histogram"})
    if unknown:
        raise EvalError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid: notes_per_second, "
            "pitch_class_histogram"
        )
    out: dict[str, Any] = {}
    if "notes_per_second" in item:
        d = item["notes_per_second"]
        if (
            isinstance(d, bool)
            or not isinstance(d, (int, float))
            or not (math.isfinite(d) and d > 0)
        ):
            raise EvalError(f"{where}.notes_per_second: expected a number > 0, got {d!r}")
        out["notes_per_second"] = float(d)
    if "pitch_class_histogram" in item:
        h = item["pitch_class_histogram"]
        good = (
            isinstance(h, (list, tuple))
            and len(h) == 12
            and all(
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and math.isfinite(v)
                and v >= 0
                for v in h
            )
            and sum(h) > 0
        )
        if not good:
            raise EvalError(
                f"{where}.pitch_class_histogram: expected 12 numbers >= 0 (C..B) "
                f"with a positive sum, got {h!r}"
            )
        out["pitch_class_histogram"] = [float(v) for v in h]
    return out


def settings_from_params(params: Mapping[str, Any]) -> Settings:
    """Read and check the ``evaluate`` section (every key optional) and the variants' sets."""
    section = params.get("evaluate") or {}
    if not isinstance(section, Mapping):
        raise EvalError(f"params evaluate: expected a mapping, got {type(section).__name__}")
    known = {f for f in Settings.__dataclass_fields__ if f not in ("variant_sets", "profile")}
    unknown = sorted(set(section) - known)
    if unknown:
        raise EvalError(
            f"params evaluate: unknown key(s) {', '.join(unknown)}; valid: "
            f"{', '.join(sorted(known))}"
        )
    alias = section.get("alias", "champion")
    if not isinstance(alias, str) or not alias.strip():
        raise EvalError(f"params evaluate.alias: expected an alias name, got {alias!r}")
    models = section.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise EvalError(f"params evaluate.models: expected a list of model names, got {models!r}")
    extra = section.get("extra_eval_sets") or {}
    if not isinstance(extra, Mapping) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in extra.values()
    ):
        raise EvalError(
            "params evaluate.extra_eval_sets: expected a mapping of family or variant "
            f"name -> list of example-set names, got {extra!r}"
        )
    requests = section.get("performance_requests", list(DEFAULT_REQUESTS))
    if not isinstance(requests, list):
        raise EvalError(f"params evaluate.performance_requests: expected a list, got {requests!r}")
    checked = tuple(
        check_request(r, f"params evaluate.performance_requests[{i}]")
        for i, r in enumerate(requests)
    )
    variant_sets: dict[str, str] = {}
    for name, spec in {**(params.get("finetunes") or {}), **(params.get("variants") or {})}.items():
        if isinstance(spec, Mapping) and isinstance(spec.get("example_set"), str):
            variant_sets[str(name)] = spec["example_set"]
    seed_default = params.get("seed", 1234)
    return Settings(
        alias=alias.strip(),
        models=tuple(models),
        examples_root=Path(str(section.get("examples_root", "data/examples"))),
        num_samples=_number(section, "num_samples", 32, integer=True, low=1, high=1000),
        improv_progressions=_number(
            section, "improv_progressions", 8, integer=True, low=1, high=1000
        ),
        temperature=_number(section, "temperature", 1.0, integer=False, low=1e-3),
        seed=_number(
            section,
            "seed",
            seed_default if isinstance(seed_default, int) else 1234,
            integer=True,
            low=0,
        ),
        batch_size=_number(section, "batch_size", 64, integer=True, low=1),
        data_samples=_number(section, "data_samples", 64, integer=True, low=1),
        melody_steps=_number(section, "melody_steps", 64, integer=True, low=2, high=4096),
        polyphony_steps=_number(section, "polyphony_steps", 64, integer=True, low=2, high=4096),
        performance_seconds=_number(
            section, "performance_seconds", 10.0, integer=False, low=1.5, high=600
        ),
        density_tolerance=_number(section, "density_tolerance", 0.2, integer=False, low=0),
        extra_eval_sets={str(k): tuple(v) for k, v in extra.items()},
        performance_requests=checked,
        variant_sets=variant_sets,
        profile=str(params.get("profile", "")),
    )


def load_settings(path: str | None) -> Settings:
    """Settings from ``path`` (an explicit path must exist; a missing default means defaults)."""
    from pipelines.params import ParamsError, load_params

    if path is None:
        if not Path("params.yaml").is_file():
            return settings_from_params({})
        path = "params.yaml"
    try:
        params = load_params(path)
    except ParamsError as exc:
        raise EvalError(str(exc)) from None
    except Exception as exc:  # yaml syntax errors carry multi-line messages
        raise EvalError(f"cannot read {path}: {first_line(exc)}") from None
    return settings_from_params(params)


# ============================================================================ registry
