"""Profiles: switch ``params.yaml`` between the ``default`` and ``full`` data/budget sets.

``params.yaml`` is what DVC reads; its profile sections (:data:`PROFILE_KEYS`) are copied from
``profiles/<name>.yaml`` by ``python -m pipelines.profile use NAME`` (``make run PROFILE=NAME``),
keeping every shared knob and comment. Switching back and forth is lossless for the profile
sections; edits made to them in ``params.yaml`` last until the next switch.

``use NAME --set train.num_steps=50`` then overrides single keys (``*`` matches every key of a
mapping, e.g. ``finetunes.*.num_steps``): ``make run PROFILE=full TRAIN_STEPS=50`` is the full
profile on a smoke training budget. ``$MOTIF_DATA_ROOT``, when set, is written to ``data_root`` so
that DVC (which reads only ``params.yaml``) watches the corpora where they really are.

``python -m pipelines.profile summary`` prints where a run's results are.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from modeling.cli import ArgumentParser, UsageError, command

PROFILE_KEYS = (
    "profile",
    "corpora",
    "fetched_corpora",
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


class ProfileError(UsageError, ValueError):
    """A bad profile name or ``--set``; printed as one line, exit 2."""


def apply_set(params: Any, assignment: str) -> int:
    """Apply one ``dotted.key=value`` (value parsed as YAML) to ``params``; returns keys set.

    Only existing mappings are walked (a typo must not create a new section silently); the last
    key may be new. ``*`` stands for every key of the mapping at that level.
    """
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ProfileError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.num_steps=50")
    value = YAML(typ="safe").load(raw) if raw.strip() else None
    parts = key.strip().split(".")

    def walk(node: Any, i: int, path: str) -> int:
        if not isinstance(node, dict):
            raise ProfileError(f"--set {key}: {path or 'params'} is not a mapping")
        part = parts[i]
        targets = list(node) if part == "*" else [part]
        if i == len(parts) - 1:
            for t in targets:
                node[t] = value
            return len(targets)
        count = 0
        for t in targets:
            if t not in node:
                raise ProfileError(
                    f"--set {key}: params have no key {(path + '.' + t).lstrip('.')}"
                )
            count += walk(node[t], i + 1, f"{path}.{t}")
        return count

    return walk(params, 0, "")


def use(name: str, params_path: Path = Path("params.yaml"), sets: tuple[str, ...] = ()) -> bool:
    """Copy profile ``name``'s sections into ``params_path``, then apply ``sets``; returns whether
    anything changed."""
    source = PROFILES_DIR / f"{name}.yaml"
    if not source.is_file():
        raise ProfileError(f"unknown profile {name!r}; available: {', '.join(available())}")
    y = _yaml()
    params = y.load(params_path.read_text())
    profile = y.load(source.read_text())
    unknown = sorted(set(profile) - set(PROFILE_KEYS))
    if unknown:
        raise ProfileError(f"{source} has non-profile key(s) {', '.join(unknown)}")
    before = json.dumps(_plain(params), sort_keys=True)
    for key in PROFILE_KEYS:
        if key in profile:
            params[key] = profile[key]
    params["profile"] = name
    if os.environ.get("MOTIF_DATA_ROOT"):
        params["data_root"] = os.environ["MOTIF_DATA_ROOT"]
    for assignment in sets:
        apply_set(params, assignment)
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


@command("profile")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m pipelines.profile", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_use = sub.add_parser("use", help="copy profiles/NAME.yaml's sections into params.yaml")
    p_use.add_argument("name")
    p_use.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                       help="override one key after the switch (e.g. train.num_steps=50)")  # fmt: skip
    sub.add_parser("summary", help="print where the results are")
    sub.add_parser("list", help="list the profiles")
    args = parser.parse_args(argv)
    if args.cmd == "use":
        changed = use(args.name, sets=tuple(args.sets))  # ProfileError: one line, exit 2
        print(f"profile: {args.name} ({'params.yaml updated' if changed else 'already active'})")
    elif args.cmd == "list":
        print("\n".join(available()))
    else:
        print(summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
