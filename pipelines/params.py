"""Loading ``params.yaml``: the one place every stage reads its knobs from.

Stages take ``--params params.yaml`` (DVC tracks the dotted keys each stage uses) and call
:func:`load_params`; ``${data_root}``-style references inside string values are expanded so that
the ``full`` profile can point every corpus at one data root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml


class ParamsError(ValueError):
    """A parameter problem the user must fix; the CLI prints it as one line and exits 2."""


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


def load_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """The parameters at ``path`` with ``${key}`` references expanded (``MOTIF_DATA_ROOT`` wins
    over ``data_root`` so CI and benchmarks can point at the shared corpora)."""
    p = Path(path)
    if not p.is_file():
        raise ParamsError(f"parameters file not found: {p}")
    with p.open() as fh:
        params = yaml.safe_load(fh) or {}
    if not isinstance(params, dict):
        raise ParamsError(f"{p}: expected a mapping at the top level")
    if os.environ.get("MOTIF_DATA_ROOT"):
        params["data_root"] = os.environ["MOTIF_DATA_ROOT"]
    return _expand(params, params)
