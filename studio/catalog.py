"""What the Studio may load: the MLflow registry's models, versions, aliases, metrics and data.

``modeling.registry.list_models`` gives one row per registered version (aliases, eval loss tag,
example set, data version, champion decision); the run behind each version adds its logged eval
metrics (perplexity, accuracy ...). ``modeling.variants`` says which family a registered name
belongs to and, for performance models, which controls it is conditioned on, so the page can
show only the controls that model takes.

For people, each model also gets a plain description, what it is good for, the notes it can
play and a quality verdict (:func:`modeling.verdicts.quality_verdict`: the evaluate stage's
``data/reports/summary.json`` when it exists, ``$MOTIF_REPORTS_SUMMARY`` elsewhere, else the
run's eval perplexity against a random guess); the technical facts stay in ``details``. Models
come family by family (``FAMILY_MODULES`` order), and ``default`` names the one the page opens on
(one of :data:`DEFAULT_MODELS`, else a model of their family).

A user's pick (name + alias or version) is checked against this catalogue and pinned to one
version number (:func:`resolve_choice`): only registered versions are ever loaded, and a batch
regenerated later uses the same weights even if ``champion`` moved meanwhile.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from modeling import first_line, registry
from modeling.families import FAMILY_MODULES
from modeling.verdicts import DEFAULT_REPORTS, note_name, quality_verdict, read_summary
from studio.validation import FieldError, ModelChoice

EVAL_METRICS = (
    "eval_loss",
    "eval_perplexity",
    "eval_accuracy",
    "eval_event_accuracy",
    "eval_no_event_accuracy",
)
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,200}")
REPORTS_ENV = "MOTIF_REPORTS_SUMMARY"
DEFAULT_MODELS = ("attention_rnn", "lookback_rnn", "basic_rnn", "mono_rnn", "edm_rnn")
"""The page opens on the first of these that is registered (else any model of their family)."""
FAMILY_ORDER = tuple(FAMILY_MODULES)
"""Models are listed family by family, in the order the families are registered."""

PLAIN: dict[str, tuple[str, str]] = {
    "basic_rnn": (
        "Writes a single-line melody, one note at a time.",
        "quick melodic ideas from a few notes",
    ),
    "mono_rnn": (
        "Writes a single-line melody over the whole keyboard, in any key.",
        "melodies outside the middle register or in a set key",
    ),
    "lookback_rnn": (
        "Writes melodies that repeat and vary what came a bar or two before.",
        "tunes with clear repeated phrases",
    ),
    "attention_rnn": (
        "Writes melodies while looking back over the last few bars.",
        "longer melodies that keep their motifs",
    ),
    "edm_rnn": (
        "A melody model tuned on dance-style tunes.",
        "short, repetitive dance hooks",
    ),
    "basic_improv": (
        "Improvises a melody over chords you give it.",
        "a tune over a simple progression of major and minor chords",
    ),
    "attention_improv": (
        "Improvises a melody over your chords, looking back over the last few bars.",
        "a tune over a major/minor progression that keeps its motifs",
    ),
    "chord_pitches_improv": (
        "Improvises a melody over chords, hearing each chord's notes and bass.",
        "progressions with sevenths and other richer chords",
    ),
    "polyphony": (
        "Writes several voices at once, like a Bach chorale.",
        "harmonising a tune or growing a chorale from a chord",
    ),
    "performance": (
        "Plays the piano with expressive timing, all at one loudness.",
        "free piano improvisation",
    ),
    "performance_with_dynamics": (
        "Plays the piano with expressive timing and loudness.",
        "free piano improvisation with dynamics",
    ),
    "density_conditioned_performance_with_dynamics": (
        "Plays the piano at the note density you ask for.",
        "sparse or busy textures on demand",
    ),
    "pitch_conditioned_performance_with_dynamics": (
        "Plays the piano favouring the pitch classes (key) you ask for.",
        "piano playing in a chosen key or mode",
    ),
    "multiconditioned_performance_with_dynamics": (
        "Plays the piano at the density and in the pitch classes you ask for.",
        "piano playing steered by both key and density",
    ),
}
"""Per variant: what it does and what it is good for, in a musician's words."""


def _variant_info(name: str) -> dict[str, Any]:
    """Family, description and control flags of a registered name (a motif variant)."""
    from modeling.families import load_family
    from modeling.variants import VARIANTS

    cfg = VARIANTS.get(name)
    if cfg is None:
        return {
            "family": None,
            "description": "not a motif variant",
            "plain": "Not a motif model, so the Studio cannot play it.",
            "good_for": "",
            "range": None,
            "classes": None,
            "density": False,
            "histogram": False,
        }
    enc = cfg.encoding
    family = load_family(cfg.family)
    controls = family.request_controls(enc)
    plain, good_for = PLAIN.get(name, (cfg.description, ""))
    return {
        "family": cfg.family,
        "description": cfg.description,  # the encoding, for the details
        "plain": plain,
        "good_for": good_for,
        "range": _playable_range(family.playable_range(enc.event_space)),
        "classes": int(enc.num_classes),
        "density": "notes_per_second" in controls,
        "histogram": "pitch_class_histogram" in controls,
    }


def _playable_range(pitches: tuple[int, int] | None) -> str | None:
    """(48, 83) -> ``C3 to B5``: the family's ``playable_range`` in note names (None: any)."""
    return None if pitches is None else f"{note_name(pitches[0])} to {note_name(pitches[1])}"


def _sort_key(model: dict[str, Any]) -> tuple[int, str]:
    family = model.get("family")
    return (FAMILY_ORDER.index(family) if family in FAMILY_ORDER else 99, model["name"])


def _default_model(models: list[dict[str, Any]]) -> str | None:
    """The model the page opens on: a preferred one, else one of their family, else any."""
    from modeling.variants import VARIANTS

    names = [m["name"] for m in models if m.get("family")]
    preferred = [n for n in DEFAULT_MODELS if n in names]
    families = {VARIANTS[n].family for n in DEFAULT_MODELS if n in VARIANTS}
    kin = [m["name"] for m in models if m.get("family") in families]
    return (preferred or kin or names or [None])[0]


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
        first = first_line(exc)
        return {"tracking_uri": uri, "models": [], "error": f"registry at {uri}: {first}"}
    summary = read_summary(os.environ.get(REPORTS_ENV) or DEFAULT_REPORTS)
    models: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row["name"]
        if name not in models:
            models[name] = {"name": name, **_variant_info(name), "versions": []}
        metrics = _run_metrics(client, row["run_id"])
        if "eval_loss" not in metrics and row["eval_loss"]:
            metrics["eval_loss"] = float(row["eval_loss"])
        ppl = metrics.get("eval_perplexity")
        if ppl is None and metrics.get("eval_loss") is not None and metrics["eval_loss"] < 50:
            ppl = math.exp(metrics["eval_loss"])
        classes = models[name]["classes"]
        entry = summary.get(name) if isinstance(summary.get(name), dict) else {}
        evaluated = entry.get("model_version") in (None, row["version"], str(row["version"]))
        quality = quality_verdict(  # the report speaks for the version it evaluated only
            summary if evaluated else {}, name, perplexity=ppl, uniform=classes
        )
        models[name]["versions"].append(
            {
                "version": row["version"],
                "aliases": row["aliases"],
                "metrics": metrics,
                "example_set": row["example_set"],
                "data_version": row["data_version"],
                "champion_decision": row["champion_decision"],
                "run_id": row["run_id"],
                "quality": quality,
            }
        )
    ordered = sorted(models.values(), key=_sort_key)
    return {
        "tracking_uri": uri,
        "models": ordered,
        "default": _default_model(ordered),
        "error": None,
    }


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
