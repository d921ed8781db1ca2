"""``report.md``: the quality-bar table, the summary, the goals and one section per variant.

Pure text from the results (figures are referenced by their paths under ``figures/``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modeling import quality as Q
from modeling.evaluation.core import Result
from modeling.evaluation.settings import METRIC_KEYS, Settings
from modeling.evaluation.summary import baseline_sources, fmt, goals


def render_report(
    results: Sequence[Result], settings: Settings, missing: Sequence[str], tracking: str
) -> str:
    """The Markdown report (figures referenced relative to it)."""
    lines = [
        "# motif evaluation report",
        "",
        f"Models: every registered model's `@{settings.alias}` version in `{tracking}`"
        f"{f' (profile `{settings.profile}`)' if settings.profile else ''}.",
        "",
        f"Held-out metrics use the training loop's scorer on each variant's eval split. "
        f"Statistics compare {settings.num_samples} generated samples per variant (melody / "
        f"improv {settings.melody_steps} steps, polyphony {settings.polyphony_steps} steps, "
        f"performance {settings.performance_seconds:g} s, temperature "
        f"{settings.temperature:g}, seed {settings.seed}; melodies primed with the first note "
        "of eval examples, polyphony and performance with their first chord, improv over their "
        f"chords) with up to {settings.data_samples} eval examples cut to the same length, and "
        "with a uniform random model (every stored event equally likely, perplexity = "
        "vocabulary size) sampled at the same lengths. "
        "Histogram distances are total-variation distances (0 = identical, 1 = disjoint).",
        "",
        *quality_table(results),
        *data_limits(results),
        "## Summary",
        "",
        "| variant | example set | eval perplexity | eval accuracy | eval loss per musical unit | "
        "cross-corpus perplexity | pitch-class distance | interval distance | in-key ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cross = ", ".join(f"{s}: {fmt(m['perplexity'], 2)}" for s, m in r.cross.items()) or "-"
        lines.append(
            f"| {r.name} | {r.example_set} | {fmt(r.eval['perplexity'])} | "
            f"{fmt(r.eval['accuracy'])} | {fmt(r.eval['loss_per_step'])} per {r.unit} | {cross} | "
            f"{fmt(r.distances['pch_distance'])} | {fmt(r.distances['interval_distance'])} | "
            f"{fmt(r.generated['in_key_ratio'])} |"
        )
    for set_name, r in baseline_sources(results).items():
        lines.append(
            f"| *uniform random* | {set_name} | {fmt(float(r.vocabulary), 1)} | "
            f"{fmt(1.0 / r.vocabulary)} | - | - | {fmt(r.uniform_distances['pch_distance'])} | "
            f"{fmt(r.uniform_distances['interval_distance'])} | "
            f"{fmt(r.uniform['in_key_ratio'])} |"
        )
        if r.ngram:
            lines.append(
                f"| *n-gram (Kneser-Ney, order {r.ngram['order']})* | {set_name} | "
                f"{fmt(r.ngram['perplexity'])} | - | - | - | - | - | - |"
            )
    lines += [
        "",
        "![pitch-class distance per variant](figures/summary_pch.png)",
        "",
        "## Goals",
        "",
        "| variant | eval perplexity | pitch classes closer than uniform | "
        "chord tones >= data | density within "
        f"{settings.density_tolerance:.0%} |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        g = goals(r)
        cells = [fmt(r.eval["perplexity"]) if g["eval_perplexity_reported"] else "**missing**"]
        cells.append(
            f"{fmt(g['pch_closer_than_uniform'])} "
            f"({fmt(r.distances['pch_distance'])} vs "
            f"{fmt(r.uniform_distances['pch_distance'])})"
        )
        cells.append(
            "-"
            if g["chord_tones_at_least_data"] is None
            else f"{fmt(g['chord_tones_at_least_data'])} ({fmt(r.improv['generated'])} vs "
            f"{fmt(r.improv['data'])})"
        )
        dens = [c for c in r.controls if "density_rel_error" in c]
        cells.append(
            "-"
            if g["density_within_tolerance"] is None
            else f"{fmt(g['density_within_tolerance'])} "
            f"({sum(c['density_within_tolerance'] for c in dens)}/{len(dens)} requests)"
        )
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    lines += ["", "## Training loss curves", "", "![loss curves](figures/loss_curves.png)", ""]
    for r in results:
        lines += variant_section(r, settings)
    if missing:
        lines += [
            "## Not evaluated",
            "",
            f"Variants in params.yaml without a `@{settings.alias}` model: {', '.join(missing)}.",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


QUANTISED_GAP_SHARE = 0.9  # three onset gaps cover this much of a piece: a score, not a performance


def data_limits(results: Sequence[Result]) -> list[str]:
    """What a performance set cannot teach: quantised timing and one loudness are measured on
    its eval data (:func:`sets.timing_and_dynamics`), so the report says it, not a reader's
    guess from the corpus name."""
    lines: list[str] = []
    seen: set[str] = set()
    for r in results:
        td = r.data.get("timing_and_dynamics") if isinstance(r.data, Mapping) else None
        if not td or td.get("top3_gap_share") is None or r.example_set in seen:
            continue
        seen.add(r.example_set)
        # step-based families are quantised by construction; only a free time axis can say
        if "second" not in r.unit:
            continue
        if td["top3_gap_share"] >= QUANTISED_GAP_SHARE:
            lines.append(
                f"- `{r.example_set}`: three gaps between onsets make up {100 * td['top3_gap_share']:.0f} "
                "% of a typical eval piece's gaps (recorded piano: about 45 %) and it uses "
                f"{td['velocities']} loudness level{'s' if td['velocities'] != 1 else ''}: these are "
                "quantised scores, not performances. There is no expressive timing"
                f"{' or dynamics' if td['velocities'] <= 2 else ''} to learn, so its models can at "
                "best play a metronomic score, and density or pitch requests far from the scores' "
                "own cannot be learnt from it. Real performances (the full profile's ASAP and "
                "POP909 sets) lift that limit."
            )
        lines += _density_coverage(r.example_set, td, results)
    return ["## What the data limits", "", *lines, ""] if lines else []


def _density_coverage(
    example_set: str, td: Mapping[str, Any], results: Sequence[Result]
) -> list[str]:
    """How much of a set's music a density request's 20 % band holds: a model conditioned on
    density can only learn the densities its data play."""
    pct = td.get("density_percentiles")
    wanted = sorted(
        {
            float(c["requested_density"])
            for r in results
            if r.example_set == example_set
            for c in r.controls
            if "requested_density" in c
        }
    )
    if not pct or not wanted:
        return []
    cdf = np.linspace(0.0, 1.0, len(pct))
    parts = []
    for want in wanted:
        lo, hi = (1 - Q.DENSITY_TOLERANCE) * want, (1 + Q.DENSITY_TOLERANCE) * want
        share = np.interp(hi, pct, cdf, left=0.0, right=1.0) - np.interp(
            lo, pct, cdf, left=0.0, right=1.0
        )
        parts.append(f"{want:.3g} notes/s: {100 * share:.1f} %")
    return [
        f"- `{example_set}`: the share of the eval music's 3-s windows (from each onset) whose density lies "
        f"within 20 % of each density request: {'; '.join(parts)}. A request the data rarely "
        "play is one a density-conditioned model has had almost no example of, unless the "
        "set's training split adds such music (performance `part_subsets`)."
    ]


QUALITY_LABELS = {
    "perplexity_vs_ngram": "eval perplexity <= 0.95 x n-gram",
    "samples": f"samples >= {Q.MIN_SAMPLES}",
    "pitch_class_distance": "pitch classes",
    "interval_distance": "intervals",
    "duration_distance": "durations",
    "density_difference": "density (notes/s)",
    "chord_tone_ratio": "chord tones >= 0.9 x data",
    "longest_note_seconds": "longest note (s) <= data's (both splits)",
    "density_requests_met": "density requests within 20 %",
    "histogram_requests_distance": "histogram requests TV <= 0.2",
    "notes_per_step": "notes per step in data p5-p95",
    "pitch_range": "pitch range in data p5-p95",
}


def _criterion_cell(c: Mapping[str, Any] | None) -> str:
    if c is None:
        return "-"
    verdict = {True: "pass", False: "**fail**", None: "n/a"}[c["pass"]]
    if c["op"] == "in":
        bound = f"in [{fmt(c['low'], 2)}, {fmt(c['high'], 2)}]"
    else:
        bound = f"{c['op']} {fmt(c['threshold'])}"
    return f"{verdict} ({fmt(c['value'])} {bound})"


def quality_table(results: Sequence[Result]) -> list[str]:
    """The report's first table: each variant's verdict and every criterion's value vs bar."""
    keys = [k for k in QUALITY_LABELS if any(k in r.quality.get("criteria", {}) for r in results)]
    lines = [
        "## Quality bar",
        "",
        "Floors of issue 12, measured, not tuned: held-out perplexity at least 5 % below an "
        "interpolated Kneser-Ney n-gram fitted on the set's train split (order chosen on the eval "
        f"split); at least {Q.MIN_SAMPLES} samples; sample histograms and density within "
        f"{Q.FLOOR_FACTOR:g}x the data's own noise floor (two random disjoint groups of eval "
        "windows of the generated and data sample counts; the floor is the "
        f"{Q.FLOOR_PERCENTILE:g}th percentile of "
        f"{Q.FLOOR_DRAWS} draws; the threshold shown is {Q.FLOOR_FACTOR:g}x that floor).",
        "",
        "| variant | overall | " + " | ".join(QUALITY_LABELS[k] for k in keys) + " |",
        "|---|---|" + "---|" * len(keys),
    ]
    for r in results:
        crit = r.quality.get("criteria", {})
        overall = (
            f"{'pass' if r.quality.get('pass') else '**fail**'} "
            f"({r.quality.get('passed', 0)}/{len(crit)})"
        )
        cells = [_criterion_cell(crit.get(k)) for k in keys]
        lines.append(f"| {r.name} | {overall} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def variant_section(r: Result, settings: Settings) -> list[str]:
    """One variant's part of the report: model, held-out metrics, statistics, adherence."""
    m = r.model
    same = (
        "(the data version it was trained on)"
        if m["same_data_as_training"]
        else "(**changed since training**: its data version differs)"
    )
    lines = [
        f"## {r.name}",
        "",
        f"Registered model `{m.get('name')}` version {m.get('version')} (run "
        f"`{str(m.get('run_id') or '-')[:12]}`, training step {m.get('step')}), family "
        f"{r.family}; eval set `{r.example_set}` "
        f"{same}; evaluated in {r.seconds:.1f} s.",
        "",
        "### Held-out metrics",
        "",
        "| metric | " + " | ".join([f"{r.example_set} (eval)", *r.cross]) + " |",
        "|---|" + "---|" * (1 + len(r.cross)),
    ]
    for k in (*METRIC_KEYS, "examples", "labels"):
        label = f"loss per {r.unit}" if k == "loss_per_step" else k
        vals = [r.eval[k], *(c[k] for c in r.cross.values())]
        lines.append(f"| {label} | " + " | ".join(fmt(v, 4) for v in vals) + " |")
    for s, why in r.skipped_sets.items():
        lines.append(f"\nCross-corpus set `{s}` skipped: {why}.")
    lines += [
        "",
        "### Generated vs data",
        "",
        "| statistic | eval data | generated | uniform random |",
        "|---|---|---|---|",
        f"| sequences / notes | {r.data['num_sequences']} / {r.data['num_notes']} | "
        f"{r.generated['num_sequences']} / {r.generated['num_notes']} | "
        f"{r.uniform['num_sequences']} / {r.uniform['num_notes']} |",
        f"| pitch-class distance to data | 0 | {fmt(r.distances['pch_distance'])} | "
        f"{fmt(r.uniform_distances['pch_distance'])} |",
        f"| interval distance to data | 0 | {fmt(r.distances['interval_distance'])} | "
        f"{fmt(r.uniform_distances['interval_distance'])} |",
    ]
    labels = {
        "pitch_range": "pitch range (semitones)",
        "note_density": "notes per second",
        "repetition": "bars repeating an earlier bar",
        "in_key_ratio": "in-key ratio",
        "silence_ratio": "silence ratio",
        "notes_per_step": "notes per sounding step",
        "voice_leading_move": "voice-leading move (semitones)",
        "leap_ratio": "voice-leading leaps > 5th",
        "velocity_spread": "velocity spread (sd)",
    }
    for key, label in labels.items():
        if all(not math.isfinite(p[key]) for p in (r.data, r.generated)):
            continue
        lines.append(
            f"| {label} | {fmt(r.data[key])} | {fmt(r.generated[key])} | {fmt(r.uniform[key])} |"
        )
    if r.improv:
        lines.append(
            f"| chord-tone ratio | {fmt(r.improv['data'])} | "
            f"{fmt(r.improv['generated'])} | {fmt(r.improv['uniform'])} |"
        )
    lines += ["", f"![histograms](figures/{r.name}_histograms.png)", ""]
    if r.controls:
        lines += [
            "### Control adherence",
            "",
            "| request | requested density | achieved density | relative error | "
            f"within {settings.density_tolerance:.0%} | histogram distance |",
            "|---|---|---|---|---|---|",
        ]
        for c in r.controls:
            lines.append(
                f"| {c['name']} | {fmt(c.get('requested_density'), 2)} | "
                f"{fmt(c.get('achieved_density'), 2)} | {fmt(c.get('density_rel_error'))} | "
                f"{fmt(c['density_within_tolerance']) if 'density_within_tolerance' in c else '-'}"
                f" | {fmt(c.get('histogram_distance'))} |"
            )
        lines += ["", f"![controls](figures/{r.name}_controls.png)", ""]
    return lines
