"""What the Studio may load: the MLflow registry's models, versions, aliases, metrics and data.

``modeling.registry.list_models`` gives one row per registered version (aliases, eval loss tag,
example set, data version, champion decision); the run behind each version adds its logged eval
metrics (perplexity, accuracy ...). ``modeling.variants`` says which family a registered name
belongs to and, for performance models, which controls it is conditioned on, so the page can
show only the controls that model takes.

A user's pick (name + alias or version) is checked against this catalogue and pinned to one
version number (:func:`resolve_choice`): only registered versions are ever loaded, and a batch
regenerated later uses the same weights even if ``champion`` moved meanwhile.
"""

from __future__ import annotations

import math
import re
from typing import Any

from modeling import registry
from studio.validation import FieldError, ModelChoice

EVAL_METRICS = (
    "eval_loss",
    "eval_perplexity",
    "eval_accuracy",
    "eval_event_accuracy",
    "eval_no_event_accuracy",
)
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,200}")


def _variant_info(name: str) -> dict[str, Any]:
    """Family, description and control flags of a registered name (a motif variant)."""
    from modeling.families.performance import ControlledPerformance
    from modeling.variants import VARIANTS

    cfg = VARIANTS.get(name)
    if cfg is None:
        return {
            "family": None,
            "description": "not a motif variant",
            "density": False,
            "histogram": False,
        }
    enc = cfg.encoding
    controlled = isinstance(enc, ControlledPerformance)
    return {
        "family": cfg.family,
        "description": cfg.description,
        "density": bool(controlled and enc.density),
        "histogram": bool(controlled and enc.histogram),
    }


def _run_metrics(client: Any, run_id: str) -> dict[str, float]:
    try:
        metrics = client.get_run(run_id).data.metrics
    except Exception:  # a deleted run still leaves its registered version usable
        return {}
    return {
        k: float(v)
        for k, v in metrics.items()
        if k in EVAL_METRICS and v is not None and math.isfinite(float(v))
    }


def load_catalogue() -> dict[str, Any]:
    """Every registered model with its versions; ``error`` is one sentence if the store is
    unreachable (the page shows it instead of a model list)."""
    uri = registry.tracking_uri()
    try:
        rows = list(registry.list_models())
        client = registry.client() if rows else None
    except registry.RegistryError as exc:
        return {
            "tracking_uri": uri,
            "models": [],
            "error": f"{exc}; train a model first (make run or python -m modeling.train)",
        }
    except Exception as exc:  # MLflow store errors vary by backend
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return {"tracking_uri": uri, "models": [], "error": f"registry at {uri}: {first}"}
    models: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row["name"]
        if name not in models:
            models[name] = {"name": name, **_variant_info(name), "versions": []}
        metrics = _run_metrics(client, row["run_id"])
        if "eval_loss" not in metrics and row["eval_loss"]:
            metrics["eval_loss"] = float(row["eval_loss"])
        models[name]["versions"].append(
            {
                "version": row["version"],
                "aliases": row["aliases"],
                "metrics": metrics,
                "example_set": row["example_set"],
                "data_version": row["data_version"],
                "champion_decision": row["champion_decision"],
                "run_id": row["run_id"],
            }
        )
    return {"tracking_uri": uri, "models": list(models.values()), "error": None}


def resolve_choice(catalogue: dict[str, Any], name: str, ref: str) -> ModelChoice:
    """Pin ``name`` + ``ref`` (an alias such as ``champion`` or a version number) to a version.

    Only names and versions present in the catalogue pass, so nothing the user types reaches
    the registry or the filesystem unchecked.
    """
    name, ref = (name or "").strip(), (ref or "").strip()
    if catalogue.get("error"):
        raise FieldError("model", catalogue["error"])
    if not name:
        raise FieldError("model", "Pick a model")
    model = next((m for m in catalogue["models"] if m["name"] == name), None)
    if model is None or not _NAME.fullmatch(name):
        names = ", ".join(m["name"] for m in catalogue["models"]) or "none"
        raise FieldError("model", f"Model {name!r} is not in the registry (registered: {names})")
    if model["family"] is None:
        raise FieldError("model", f"{name} is not a motif variant, so the Studio cannot play it")
    versions = model["versions"]
    ref = ref or registry.CHAMPION
    if ref.isdigit():
        match = next((v for v in versions if v["version"] == int(ref)), None)
    else:
        match = next((v for v in versions if ref in v["aliases"]), None)
    if match is None:
        raise FieldError("model", f"{name} has no version or alias {ref!r}")
    return ModelChoice(
        name=name,
        version=int(match["version"]),
        family=model["family"],
        density=model["density"],
        histogram=model["histogram"],
    )
