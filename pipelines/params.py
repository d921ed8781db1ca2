"""Loading ``params.yaml``: the one place every stage reads its knobs from.

Stages take ``--params params.yaml`` (DVC tracks the dotted keys each stage uses) and call
:func:`load_params`; ``${data_root}``-style references inside string values are expanded so that
the ``full`` profile can point every corpus at one data root.

:func:`load_params` also checks the file against :data:`SCHEMA`, the shapes and types of the keys
the stages read (``train`` and ``variants``/``finetunes`` for ``modeling.train``, ``ingest`` and
``beam`` for ``pipelines.ingest``, ``examples``/``example_sets`` for ``pipelines.examples``,
``generate`` for ``modeling.batch``, ``evaluate`` for ``modeling.evaluate``...). A wrong type is
one :class:`ParamsError` line naming the file, the dotted key and the expected type, before any
stage converts the value: ``int(True)`` or ``int(60.7)`` would otherwise run silently with 1 or 60.
Keys the schema does not name pass through: the stage reading a section lists its valid keys, and
only when it runs (a typo in one variant's entry must not stop every other stage).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml


class ParamsError(ValueError):
    """A parameter problem the user must fix; the CLI prints it as one line and exits 2."""


# ----------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Scalar:
    """A leaf value: ``accepts`` decides, ``expected`` / ``plural`` name it in errors."""

    expected: str
    plural: str
    accepts: Callable[[Any], bool]
    null_ok: bool = False


@dataclass(frozen=True)
class ListOf:
    """A YAML sequence whose every item is ``item``."""

    item: Spec
    null_ok: bool = False

    @property
    def expected(self) -> str:
        return f"a list of {self.item.plural}"

    plural = "lists"


@dataclass(frozen=True)
class Fields:
    """A mapping with known keys, each optional; other keys are left to the stage reading it."""

    fields: Mapping[str, Spec] = field(default_factory=dict)
    null_ok: bool = False
    expected = "a mapping"
    plural = "mappings"


@dataclass(frozen=True)
class Named:
    """A mapping from user-chosen names (corpora, variants, requests...) to ``item``."""

    item: Spec
    null_ok: bool = False
    expected = "a mapping of names"
    plural = "mappings"


Spec = Scalar | ListOf | Fields | Named


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # YAML true is an int to Python


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


INT = Scalar("an integer", "integers", _is_int)
NUMBER = Scalar("a finite number", "finite numbers", _is_number)
BOOL = Scalar("true or false", "booleans", lambda v: isinstance(v, bool))
STR = Scalar("a string", "strings", lambda v: isinstance(v, str))


def nullable(spec: Spec) -> Spec:
    """``spec``, or YAML null (an empty section or an unset knob, read as the default)."""
    return replace(spec, null_ok=True)


# modeling.train: the train section, and the same settings per variant/finetune entry
_TRAIN_SETTINGS: dict[str, Spec] = {
    "num_steps": INT,
    "eval_every": INT,
    "keep_last": INT,
    "save_every": nullable(INT),
    "attention": STR,
    "precision": STR,
    "max_batch_events": INT,
}
# modeling.families.base.HParams (tests/test_params.py keeps the two in step)
HPARAMS = Fields(
    {
        "batch_size": INT,
        "rnn_layer_sizes": ListOf(INT),
        "dropout_keep_prob": NUMBER,
        "attn_length": INT,
        "clip_norm": NUMBER,
        "learning_rate": NUMBER,
        "output_terms": BOOL,
    },
    null_ok=True,
)
_MODEL_ENTRY = Fields(
    {
        **_TRAIN_SETTINGS,
        "seed": INT,
        "example_set": STR,
        "init_from": STR,
        "hparams": HPARAMS,
    },
    null_ok=True,
)
# pipelines.beam_io.pipeline_options: other scalar keys become --key=value
_BEAM = Fields(
    {
        "runner": STR,
        "direct_num_workers": INT,
        "direct_running_mode": STR,
        "extra_args": nullable(ListOf(STR)),
    },
    null_ok=True,
)
# pipelines.examples.ExampleSetSpec: examples holds the defaults of every set
_SET_DEFAULTS: dict[str, Spec] = {
    "eval_ratio": NUMBER,
    "seed": INT,
    "augment_eval": BOOL,
    "num_shards": INT,
    "split_by": STR,
}
_EXTRACT = Fields(null_ok=True)  # family options: each family's extractor checks its own keys

SCHEMA = Fields(
    {
        "data_root": STR,
        "seed": INT,
        "profile": STR,
        "beam": _BEAM,
        "ingest": Fields(
            {  # pipelines.ingest.cli._KNOBS
                "max_file_bytes": INT,
                "timeout_s": NUMBER,
                "num_shards": INT,
                "min_tempo_qpm": NUMBER,
                "max_tempo_qpm": NUMBER,
                "max_duration_s": NUMBER,
                "max_unzipped_bytes": INT,
                "max_zip_ratio": NUMBER,
            },
            null_ok=True,
        ),
        "examples": Fields({**_SET_DEFAULTS, "beam": _BEAM}, null_ok=True),
        "refresh": Fields({"finetune_steps": INT}, null_ok=True),
        "schedules": Fields(
            {
                "timezone": STR,
                "refresh": nullable(STR),
                "generate": nullable(STR),
                "rebuild": nullable(STR),
            },
            null_ok=True,
        ),
        "corpora": Named(Fields({"input": STR}), null_ok=True),
        "music21_corpora": Named(Fields({"input": STR}), null_ok=True),
        "fetched_corpora": Named(Fields({"path": STR}), null_ok=True),  # under data_root
        "example_sets": Named(
            Fields(
                {
                    **_SET_DEFAULTS,
                    "family": STR,
                    "corpora": nullable(ListOf(STR)),
                    "splits": nullable(ListOf(STR)),
                    "extract": _EXTRACT,
                    "extract_by_corpus": Named(_EXTRACT, null_ok=True),
                }
            ),
            null_ok=True,
        ),
        "train": Fields(_TRAIN_SETTINGS, null_ok=True),
        "variants": Named(_MODEL_ENTRY, null_ok=True),
        "finetunes": Named(_MODEL_ENTRY, null_ok=True),
        "generate": Fields(
            {
                "seed": INT,
                "requests": Named(
                    Fields(  # the other keys are modeling.generate flags: its parser checks them
                        {
                            "variant": STR,
                            "model": STR,
                            "seed": INT,
                            "num_outputs": INT,
                            "num_steps": INT,
                            "num_seconds": NUMBER,
                        }
                    ),
                    null_ok=True,
                ),
            },
            null_ok=True,
        ),
        "evaluate": Fields(
            {  # modeling.evaluate.Settings (ranges are checked there)
                "alias": STR,
                "models": nullable(ListOf(STR)),
                "examples_root": STR,
                "num_samples": INT,
                "improv_progressions": INT,
                "temperature": NUMBER,
                "seed": INT,
                "batch_size": INT,
                "data_samples": INT,
                "melody_steps": INT,
                "polyphony_steps": INT,
                "performance_seconds": NUMBER,
                "density_tolerance": NUMBER,
                "extra_eval_sets": Named(ListOf(STR), null_ok=True),
                "performance_requests": ListOf(
                    Fields({"notes_per_second": NUMBER, "pitch_class_histogram": ListOf(NUMBER)})
                ),
            },
            null_ok=True,
        ),
    }
)


def _describe(value: Any) -> str:
    """A value as the user wrote it in YAML (short: errors stay one line)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"a list {text}" if isinstance(value, list) else text


def problems(spec: Spec, value: Any, key: str = "") -> Iterator[str]:
    """``dotted.key: expected ..., got ...`` for every value that does not fit ``spec``."""
    if value is None and spec.null_ok:
        return
    where = key or "top level"
    if isinstance(spec, Scalar):
        if value is None or not spec.accepts(value):
            yield f"{where}: expected {spec.expected}, got {_describe(value)}"
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            yield f"{where}: expected {spec.expected}, got {_describe(value)}"
            return
        for i, item in enumerate(value):
            yield from problems(spec.item, item, f"{key}[{i}]")
    else:
        if not isinstance(value, dict):
            yield f"{where}: expected {spec.expected}, got {_describe(value)}"
            return
        for name, item in value.items():
            dotted = f"{key}.{name}" if key else str(name)
            if isinstance(spec, Named):
                if not isinstance(name, str):
                    yield f"{dotted}: expected a name (a string), got {_describe(name)}"
                else:
                    yield from problems(spec.item, item, dotted)
            elif name in spec.fields:
                yield from problems(spec.fields[name], item, dotted)


# ----------------------------------------------------------------------------- loading

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def _lookup(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ParamsError(f"params reference ${{{dotted}}} names no key")
        node = node[part]
    return node


def _expand(value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _REF.sub(lambda m: str(_lookup(params, m.group(1))), value)
    if isinstance(value, dict):
        return {k: _expand(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, params) for v in value]
    return value


def _read_yaml(p: Path) -> Any:
    """The parsed file; syntax errors become one line with the line and column to look at."""
    try:
        with p.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.MarkedYAMLError as exc:

        def at(mark: Any) -> str:
            return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""

        what = " ".join(str(exc.problem or "syntax error").split())
        message = f"{p}: invalid YAML{at(exc.problem_mark or exc.context_mark)}: {what}"
        if exc.context and exc.context_mark:  # where the unclosed bracket or quote began
            message += f" ({' '.join(exc.context.split())}{at(exc.context_mark)})"
        raise ParamsError(message) from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{p}: invalid YAML: {' '.join(str(exc).split())}") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ParamsError(f"{p}: cannot read: {exc.strerror or exc}") from None


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """The parameters at ``path``, checked against :data:`SCHEMA`, with ``${key}`` references
    expanded (``MOTIF_DATA_ROOT`` wins over ``data_root`` so CI and benchmarks can point at the
    shared corpora)."""
    p = Path(path)
    if not p.is_file():
        raise ParamsError(f"parameters file not found: {p}")
    params = _read_yaml(p)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ParamsError(f"{p}: expected a mapping at the top level, got {_describe(params)}")
    found = list(problems(SCHEMA, params))
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ParamsError(f"{p}: {found[0]}{more}")
    if os.environ.get("MOTIF_DATA_ROOT"):
        params["data_root"] = os.environ["MOTIF_DATA_ROOT"]
    return _expand(params, params)
