"""Generation outputs: file names, the one per-sample JSON record, and the all-or-nothing writer.

``<variant>_<seed>_<index>.mid/.png/.wav/.json`` per sample, rendered by :mod:`modeling.render`
(FluidSynth + GM soundfont, else note-seq's synthesiser). :func:`sample_record` builds the JSON
record of one sample for both the CLI (:mod:`modeling.generation.cli`) and the studio
(``studio.jobs``), each adding what only it knows (flags and timings; the page's settings).
:func:`write_outputs` writes everything to a temporary directory first and moves it into place
only when every sample succeeded; existing files are never overwritten without ``overwrite``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from note_seq.protobuf import music_pb2

from modeling.parts import split_parts

from .plan import Plan, Sample
from .request import GenerateError, Request


def output_stem(variant: str, seed: int, index: int) -> str:
    """Deterministic file stem of sample ``index`` (1-based) of ``seed``."""
    return f"{variant}_{seed}_{index:03d}"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_outputs(
    output_dir: Path,
    stems: Sequence[str],
    notes: Sequence[music_pb2.NoteSequence],
    records: Sequence[dict[str, Any]],
    *,
    primer_seconds: float,
    audio: str,
    overwrite: bool,
) -> list[dict[str, str]]:
    """Render every sample into a temporary directory, then move all files into place.

    MIDI and piano rolls are drawn one after the other (pyplot is not thread-safe); audio is
    rendered on a small thread pool, since FluidSynth runs as a subprocess and each render
    mostly waits on it. Any failure removes the temporary directory (and ``output_dir`` if this
    call created it), so an error never leaves part of a request behind.
    """
    from concurrent.futures import ThreadPoolExecutor

    from modeling import render

    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    exts = [".mid", ".png", ".json"] + ([".wav"] if audio == "wav" else [])
    tmp = Path(tempfile.mkdtemp(prefix=".motif-generate-", dir=output_dir))
    ok = False
    try:
        for stem, ns in zip(stems, notes, strict=True):
            render.write_midi(ns, tmp / f"{stem}.mid")
            render.piano_roll_png(ns, tmp / f"{stem}.png", stem, primer_seconds or None)
        renderers: list[str | None] = [None] * len(stems)
        if audio == "wav":
            workers = max(1, min(4, os.cpu_count() or 1, len(stems)))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                renderers = list(
                    pool.map(
                        lambda a: render.render_audio(a[1], tmp / f"{a[0]}.wav"),
                        zip(stems, notes, strict=True),
                    )
                )
        files = []
        for stem, rec, renderer in zip(stems, records, renderers, strict=True):
            final = {
                "midi": str(output_dir / f"{stem}.mid"),
                "piano_roll": str(output_dir / f"{stem}.png"),
            }
            if renderer is not None:
                final.update({"audio": str(output_dir / f"{stem}.wav"), "audio_renderer": renderer})
            (tmp / f"{stem}.json").write_text(
                json.dumps(_json_safe({**rec, "files": final}), indent=2) + "\n"
            )
            files.append({**final, "json": str(output_dir / f"{stem}.json")})
        if not overwrite:  # re-check: something may have appeared meanwhile
            clash = [
                output_dir / (s + e) for s in stems for e in exts if (output_dir / (s + e)).exists()
            ]
            if clash:
                raise GenerateError(
                    "output_dir", f"{clash[0]} exists; use {{overwrite}} or another {{output_dir}}"
                )
        for stem in stems:
            for ext in exts:
                os.replace(tmp / (stem + ext), output_dir / (stem + ext))
        ok = True
        return files
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not ok and created:
            with contextlib.suppress(OSError):
                output_dir.rmdir()  # only if empty


def model_record(model: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Where the model of a sample came from (registry version or checkpoint) and what it is."""
    cfg = meta.get("config", {})
    return {
        "uri": meta.get("uri"),
        "name": meta.get("name"),
        "version": meta.get("version"),
        "aliases": meta.get("aliases"),
        "run_id": meta.get("run_id"),
        "path": meta.get("path"),
        "variant": model.variant,
        "family": model.family,
        "event_space": model.encoding.event_space,
        "training_step": meta.get("step"),
        "data_version": meta.get("data_version"),
        "example_set": cfg.get("example_set"),
        "hparams": cfg.get("hparams"),
        "attention": cfg.get("attention"),
        "eval_metrics": meta.get("metrics"),
    }


def sample_record(
    model: Any,
    req: Request,
    plan: Plan,
    sample: Sample,
    ns: music_pb2.NoteSequence,
    index: int,
    /,
    **context: Any,
) -> dict[str, Any]:
    """The JSON record of sample ``index`` (1-based) of a request: what was asked, what the model
    did (log-likelihood, events, forced events) and what came out (length, notes; backing-chord
    notes counted apart). ``context`` (the caller's: model provenance, flags, the page's
    settings, timings) is merged in after the request's identity."""
    melody, chords = split_parts(ns)
    return {
        "variant": model.variant,
        "family": model.family,
        "seed": req.seed,
        "sample_index": index,
        "num_outputs": req.num_outputs,
        **context,
        "log_likelihood": sample.log_likelihood,
        "num_events": len(sample.events),
        "num_sampled_events": sample.num_sampled,
        "num_forced_events": sample.num_forced,
        "reached_length": sample.reached_length,
        "events": sample.events.tolist(),
        "plan": plan.info,
        "scale": req.scale.describe() if req.scale else None,
        "qpm": req.resolved_qpm() if plan.metered else None,
        "temperature": req.temperature,
        "beam": {
            "beam_size": req.beam_size,
            "branch_factor": req.branch_factor,
            "steps_per_iteration": req.steps_per_iteration,
        },
        "total_time": ns.total_time,
        "num_notes": len(ns.notes),
        "num_melody_notes": len(melody),
        "num_chord_notes": len(chords),
    }
