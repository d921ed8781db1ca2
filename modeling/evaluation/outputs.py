"""Writing the stage's outputs: every file into a temporary folder, moved in only when complete,
and each evaluated version's verdict onto its registry model card.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from modeling import quality as Q
from modeling.evaluation import figures
from modeling.evaluation.core import Result
from modeling.evaluation.report import render_report
from modeling.evaluation.settings import OUTPUT_ITEMS, Settings
from modeling.evaluation.summary import (
    SUMMARY_FIELDS,
    baseline_sources,
    csv_text,
    finite,
    summary_entry,
    summary_rows,
)


def write_outputs(
    results: Sequence[Result], settings: Settings, missing: Sequence[str], output: Path
) -> list[str]:
    """Write every output into a temporary directory beside ``output``, then move them in.

    Only the stage's own items (:data:`OUTPUT_ITEMS`) are replaced; a failure leaves the
    previous report untouched.
    """
    from modeling import registry

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.evaluate-", dir=output.parent))
    try:
        figs, plots = tmp / "figures", tmp / "plots"
        for d in (figs, plots / "loss", plots / "pitch_classes"):
            d.mkdir(parents=True)
        figures.plot_losses(results, figs / "loss_curves.png")
        figures.plot_summary(results, figs / "summary_pch.png")
        control_rows = []
        for r in results:
            figures.plot_histograms(r, figs / f"{r.name}_histograms.png")
            if r.controls:
                figures.plot_controls(
                    r, figs / f"{r.name}_controls.png", settings.density_tolerance
                )
            (plots / "loss" / f"{r.name}.csv").write_text(
                csv_text(r.history, ("step", "train_loss", "eval_loss"))
            )
            pch = [
                {
                    "pitch_class": pc,
                    "data": r.data["pitch_class_histogram"][pc],
                    "generated": r.generated["pitch_class_histogram"][pc],
                    "uniform": r.uniform["pitch_class_histogram"][pc],
                }
                for pc in range(12)
            ]
            (plots / "pitch_classes" / f"{r.name}.csv").write_text(
                csv_text(pch, ("pitch_class", "data", "generated", "uniform"))
            )
            for c in r.controls:
                if "requested_density" in c:
                    control_rows.append(
                        {
                            "variant": r.name,
                            "request": c["name"],
                            "requested": c["requested_density"],
                            "achieved": c["achieved_density"],
                            "rel_error": c["density_rel_error"],
                        }
                    )
        (plots / "controls.csv").write_text(
            csv_text(control_rows, ("variant", "request", "requested", "achieved", "rel_error"))
        )
        (tmp / "summary.csv").write_text(csv_text(summary_rows(results), SUMMARY_FIELDS))
        summary = {r.name: summary_entry(r) for r in results}
        summary["uniform_random"] = finite(
            {
                s: {
                    "perplexity": float(r.vocabulary),
                    "pch_distance": r.uniform_distances["pch_distance"],
                    "interval_distance": r.uniform_distances["interval_distance"],
                }
                for s, r in baseline_sources(results).items()
            }
        )
        summary["ngram_baseline"] = finite(
            {
                s: {k: r.ngram[k] for k in ("order", "loss", "perplexity")}
                for s, r in baseline_sources(results).items()
                if r.ngram
            }
        )
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (tmp / "report.md").write_text(
            render_report(results, settings, missing, registry.tracking_uri())
        )
        output.mkdir(parents=True, exist_ok=True)
        for item in OUTPUT_ITEMS:
            dest = output / item
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(tmp / item, dest)
        return [str(output / item) for item in OUTPUT_ITEMS]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ============================================================================ CLI


def record_quality(results: Sequence[Result], say: Callable[[str], None]) -> None:
    """Put each evaluated version's verdict on its model card (``quality`` tag + description)."""
    from modeling import registry

    for r in results:
        version = r.model.get("version")
        if version is None or not r.quality:
            continue
        verdict, text = Q.verdict_text(r.quality)
        try:
            registry.set_quality(r.name, version, verdict, text)
        except registry.RegistryError as exc:
            say(f"{r.name}: quality verdict not recorded in the registry: {exc}")
        say(f"{r.name}: quality {verdict} ({text})")
