"""The listing: every registered version with its aliases, eval loss and data version.

:func:`list_models` feeds the studio's catalogue (``studio.catalog``) and :func:`main`, the
``motif models`` command (``python -m modeling.registry [--name NAME] [--json]``, dispatched by
:mod:`modeling.motif`), written in the shared CLI idiom of :mod:`modeling.cli`: a missing store or
an MLflow error is one ``registry: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from modeling import first_line
from modeling.cli import ArgumentParser, UsageError, command
from modeling.registry.store import LATEST, RegistryError, client, mlflow_error, tracking_uri


def list_models(name: str | None = None) -> Iterator[dict[str, Any]]:
    """One dict per registered model version (newest model versions first)."""
    c = client()
    models = c.search_registered_models(filter_string=f"name = '{name}'" if name else None)
    for rm in sorted(models, key=lambda m: m.name):
        versions = c.search_model_versions(f"name = '{rm.name}'")
        newest = max((int(v.version) for v in versions), default=0)
        by_version: dict[int, list[str]] = {}  # search results do not carry aliases
        for alias, version in (c.get_registered_model(rm.name).aliases or {}).items():
            by_version.setdefault(int(version), []).append(alias)
        for v in sorted(versions, key=lambda v: -int(v.version)):
            aliases = sorted(by_version.get(int(v.version), []))
            if int(v.version) == newest:
                aliases = [LATEST, *aliases]
            yield {
                "name": rm.name,
                "version": int(v.version),
                "aliases": aliases,
                "eval_loss": v.tags.get("eval_loss", ""),
                "data_version": v.tags.get("data_version", ""),
                "example_set": v.tags.get("example_set", ""),
                "champion_decision": v.tags.get("champion_decision", ""),
                "run_id": v.run_id,
            }


@command("registry")
def main(argv: list[str] | None = None) -> int:
    """List the registered models (a table, or one JSON object per version with ``--json``)."""
    parser = ArgumentParser(
        prog="python -m modeling.registry", description="List registered motif models and versions."
    )
    parser.add_argument("--name", help="only this registered model (variant)")
    parser.add_argument("--json", action="store_true", help="one JSON object per version")
    args = parser.parse_args(argv)
    try:
        rows = list(list_models(args.name))
    except RegistryError as exc:
        raise UsageError(first_line(exc)) from None
    except mlflow_error() as exc:
        raise UsageError(first_line(exc.message)) from None
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    print(f"tracking URI: {tracking_uri()}")
    if not rows:
        print("no registered models")
        return 0
    header = ("model", "ver", "aliases", "eval_loss", "example_set", "data_version", "run")
    table = [header] + [
        (
            r["name"],
            str(r["version"]),
            ",".join(r["aliases"]) or "-",
            f"{float(r['eval_loss']):.4f}" if r["eval_loss"] else "-",
            r["example_set"] or "-",
            (r["data_version"] or "-")[:20],
            r["run_id"][:8],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0
