"""Profiles: switch ``params.yaml`` between the ``default`` and ``full`` data/budget sets.

``params.yaml`` is what DVC reads; its profile sections (:data:`PROFILE_KEYS`) are copied from
``profiles/<name>.yaml`` by ``python -m pipelines.profile use NAME`` (``make run PROFILE=NAME``),
keeping every shared knob and comment. Switching back and forth is lossless for the profile
sections; edits made to them in ``params.yaml`` last until the next switch.

``python -m pipelines.profile summary`` prints where a run's results are.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

PROFILE_KEYS = (
    "profile",
    "corpora",
    "music21_corpora",
    "example_sets",
    "variants",
    "finetunes",
    "train",
    "generate",
    "evaluate",
)
PROFILES_DIR = Path("profiles")


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap flow-style lines
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def available() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def use(name: str, params_path: Path = Path("params.yaml")) -> bool:
    """Copy profile ``name``'s sections into ``params_path``; returns whether anything changed."""
    source = PROFILES_DIR / f"{name}.yaml"
    if not source.is_file():
        print(f"profile: unknown profile {name!r}; available: {', '.join(available())}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    y = _yaml()
    params = y.load(params_path.read_text())
    profile = y.load(source.read_text())
    unknown = sorted(set(profile) - set(PROFILE_KEYS))
    if unknown:
        raise SystemExit(f"profile: {source} has non-profile key(s) {', '.join(unknown)}")
    before = json.dumps(_plain(params), sort_keys=True)
    for key in PROFILE_KEYS:
        if key in profile:
            params[key] = profile[key]
    params["profile"] = name
    if json.dumps(_plain(params), sort_keys=True) == before:
        return False
    tmp = params_path.with_suffix(".yaml.tmp")
    with tmp.open("w") as fh:
        y.dump(params, fh)
    os.replace(tmp, params_path)
    return True


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def summary() -> str:
    """Where the results of the last ``dvc repro`` are, in a few lines."""
    lines = ["", "motif: results"]
    for label, path in (
        ("gallery (open me)", "data/gallery/index.html"),
        ("generated samples", "data/generated/<request>/ (MIDI, PNG, WAV, JSON)"),
        ("evaluation report", "data/reports/report.md"),
        ("ingest metrics", "data/metrics/ingest/*.json"),
        ("example-set metrics", "data/metrics/examples/*.json"),
        ("training metrics", "data/metrics/train/*.json (loss curves: data/models/*/)"),
    ):
        lines.append(f"  {label:22s} {path}")
    uri = os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlruns/mlflow.db")
    lines += [
        f"  {'MLflow registry':22s} {uri}  (UI: .venv/bin/mlflow ui --backend-store-uri {uri})",
        f"  {'models':22s} .venv/bin/python -m modeling.registry",
        f"  {'metrics / plots':22s} .venv/bin/dvc metrics show ; .venv/bin/dvc plots show",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.profile", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_use = sub.add_parser("use", help="copy profiles/NAME.yaml's sections into params.yaml")
    p_use.add_argument("name")
    sub.add_parser("summary", help="print where the results are")
    sub.add_parser("list", help="list the profiles")
    args = parser.parse_args(argv)
    if args.cmd == "use":
        changed = use(args.name)
        print(f"profile: {args.name} ({'params.yaml updated' if changed else 'already active'})")
    elif args.cmd == "list":
        print("\n".join(available()))
    else:
        print(summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
