"""Model cards: what a registered model and each of its versions say about themselves.

The registered model gets a description and ``family``/``variant`` tags once, when
:func:`modeling.registry.gate.register` creates it (:func:`model_tags`,
:func:`model_description`); each version a description (:func:`model_card`: variant, family,
example set and its DVC data version, steps, eval metrics, quality) and tags to search by, e.g.
``mlflow.search_model_versions("tags.family='performance'")``. The quality is "not evaluated"
until :func:`set_quality` records the evaluate stage's verdict (``modeling.evaluation``).
"""

from __future__ import annotations

import math
from typing import Any

from modeling.registry.store import RegistryError, client, mlflow_error

QUALITY_TAG = "quality"
_QUALITY_LINE = "- Quality: "
_NOT_EVALUATED = "not evaluated yet (the evaluate stage sets it)"


def model_tags(name: str) -> dict[str, str]:
    """A registered model's searchable tags (``search_registered_models("tags.family=...")``)."""
    from modeling.variants import VARIANTS

    cfg = VARIANTS.get(name)
    return {"family": cfg.family, "variant": name} if cfg else {"variant": name}


def model_description(name: str) -> str:
    """The registered model's description, set once when it is created."""
    from modeling.variants import VARIANTS

    cfg = VARIANTS.get(name)
    what = f"{cfg.description} ({cfg.family} family)" if cfg else "not a known motif variant"
    return (
        f"motif {name}: {what}. Every version is an MLflow python_function model: "
        f"`mlflow.pyfunc.load_model('models:/{name}@champion').predict(df)` takes a DataFrame "
        "of generation requests (primer, num_steps or num_seconds, temperature, beam_size, "
        "key, seed, and the family's own columns; see the signature) and returns one row per "
        "sample: events (JSON), log_likelihood and midi_base64. `champion` is the version with "
        "the best eval loss on comparable data; each version's description is its model card."
    )


def model_card(
    config: dict[str, Any], final: dict[str, Any], metrics: dict[str, float]
) -> dict[str, Any]:
    """A version's description and searchable tags: variant, family, training data and its DVC
    data version, steps, eval metrics (``metrics``: the best checkpoint's ``eval_*``), quality.
    """
    variant, family = str(config.get("variant", "")), str(config.get("family", ""))
    example_set, data = str(config.get("example_set", "")), str(config.get("data_version", ""))
    best_step = final.get("best", {}).get("step")
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    tags = {
        "variant": variant,
        "family": family,
        "example_set": example_set,
        "steps": str(int(final.get("step", -1))),
        "format": "mlflow-pyfunc",
        QUALITY_TAG: "not evaluated",
        **{k: repr(float(v)) for k, v in shown.items() if k != "eval_loss"},
    }
    lines = [
        f"**{variant}** ({family} family), MLflow python_function model.",
        "",
        f"- Training data: example set `{example_set or '-'}`, DVC data version "
        f"`{data or '-'}` ({config.get('data_version_source', '') or 'unknown source'})",
        f"- Steps: {tags['steps']} (best checkpoint at step {best_step})",
        "- Eval metrics at the best step: "
        + (", ".join(f"{k.removeprefix('eval_')} {v:.4g}" for k, v in shown.items()) or "none"),
        f"{_QUALITY_LINE}{_NOT_EVALUATED}",
    ]
    return {"description": "\n".join(lines), "tags": tags}


def set_quality(name: str, version: int | str, verdict: str, text: str = "") -> None:
    """Record the evaluate stage's quality verdict on a version: the ``quality`` tag (searchable:
    ``tags.quality='pass'``) and the quality line of its description."""
    c = client()
    MlflowException = mlflow_error()
    try:
        mv = c.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"{name}/{version}: {exc.message.splitlines()[0]}") from None
    c.set_model_version_tag(name, str(version), QUALITY_TAG, verdict)
    line = f"{_QUALITY_LINE}{verdict}" + (f": {text}" if text else "")
    kept = [ln for ln in (mv.description or "").splitlines() if not ln.startswith(_QUALITY_LINE)]
    c.update_model_version(name, str(version), description="\n".join([*kept, line]).strip())
