"""The batch-generation stages: requests from ``params.yaml:generate.requests`` against the registry.

    python -m modeling.batch run --request NAME --params params.yaml --output data/generated/NAME
    python -m modeling.batch run-all --params params.yaml --output data/generated
    python -m modeling.batch gallery --params params.yaml --generated data/generated --output data/gallery

A request names a ``variant`` (the model is ``models:/<variant>@champion`` unless ``model`` gives
another registry URI), a human ``title`` and one-line ``description`` for the gallery, and any of
``modeling.generate``'s flags, spelled as on its command line without the dashes (Magenta's names:
``primer_melody``, ``primer_pitches``, ``backing_chords``, ``controls``, ``num_steps`` ...).
``run`` goes through :func:`modeling.generate.run` — the same code as the CLI, which renders aside
and moves files in only when every sample succeeded. ``run-all`` runs every request in one
process, each into ``<output>/<request>``: the DVC stage. One process, not one stage per request,
because a process spends ~4 s importing torch, note-seq and MLflow and ~2 s opening the
registry, against well under a second of generation per request (15 requests: ~100 s as
separate stages, 13 s in one); a changed variant regenerates every request.

``gallery`` writes one static page (it works from ``file://``): requests grouped by family with a
table of contents, each with its title and description, the model and its quality verdict, the
primer, chords and controls in words, and every sample's piano roll, audio, MIDI and length.
The verdict comes from the evaluate stage's ``summary.json`` when it exists
(:func:`modeling.verdicts.quality_verdict`, shared with the Studio's model box), else from the
eval metrics the model was registered with. The CLI is :mod:`modeling.cli`'s: bad params or flags
are one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modeling.cli import ArgumentParser, UsageError, command
from modeling.families import FAMILY_MODULES, load_family
from modeling.generate import RequestError, build_parser, run
from modeling.verdicts import (  # the gallery's words; tests read them as batch.<name> too
    DEFAULT_REPORTS,
    NOTE_NAMES,
    finite_number,
    note_name,
    plain_number,
    quality_verdict,
    read_summary,
)
from pipelines.params import ParamsError, load_params

SUMMARY = "request.json"
FILE_KEYS = ("midi", "piano_roll", "audio", "json")
TEXT_KEYS = ("title", "description")
"""Request keys for people (the gallery), not flags of ``modeling.generate``."""
FAMILY_ORDER = tuple(FAMILY_MODULES)  # the gallery's section order


# ----------------------------------------------------------------------------- running requests


def requests_of(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    requests = (params.get("generate") or {}).get("requests") or {}
    if not requests:
        raise ParamsError("generate.requests is empty: nothing to generate")
    return requests


def request_argv(name: str, spec: dict[str, Any], output_dir: Path, seed: int) -> list[str]:
    """The ``modeling.generate`` command line of one request (its title/description left out)."""
    spec = {k: v for k, v in spec.items() if k not in TEXT_KEYS}
    variant = spec.pop("variant", None)
    model = spec.pop("model", None) or (f"models:/{variant}@champion" if variant else None)
    if not model:
        raise ParamsError(f"generate.requests.{name}: give 'variant' or 'model'")
    argv = ["--model", str(model), "--output_dir", str(output_dir), "--quiet"]
    spec.setdefault("seed", seed)
    for key, value in spec.items():
        if isinstance(value, bool):
            argv.append(f"--{key}={'true' if value else 'false'}")
        elif isinstance(value, list):
            argv += [f"--{key}", json.dumps(value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def parse_request(name: str, argv: list[str]) -> argparse.Namespace:
    """Parse a request's flags with the generation CLI's own parser (one line on error)."""
    parser = build_parser()
    parser.exit_on_error = False  # bad values raise ArgumentError, the rest UsageError
    try:
        args, unknown = parser.parse_known_args(argv)
    except (argparse.ArgumentError, UsageError) as exc:
        raise ParamsError(f"generate.requests.{name}: {exc}") from exc
    if unknown:
        raise ParamsError(f"generate.requests.{name}: unknown flag(s) {' '.join(unknown)}")
    return args


def run_request(params: dict[str, Any], name: str, output: Path) -> dict[str, Any]:
    """Generate one request into ``output`` (built aside, then swapped in)."""
    requests = requests_of(params)
    if name not in requests:
        raise ParamsError(f"unknown request {name!r}; valid: {', '.join(requests)}")
    spec = dict(requests[name])
    seed = int((params.get("generate") or {}).get("seed", params.get("seed", 0)))
    args = parse_request(name, request_argv(name, spec, output, seed))
    args.overwrite = True  # a stage's output is its own: DVC removed the old one before the run
    start = time.perf_counter()
    try:
        summary = run(args)  # renders aside and moves files in only when every sample succeeded
    except RequestError as exc:
        raise ParamsError(f"generate.requests.{name}: {exc}") from exc
    record = {
        "request": name,
        **{k: str(spec[k]) for k in TEXT_KEYS if spec.get(k)},
        "spec": {k: v for k, v in spec.items() if k not in TEXT_KEYS},
        "variant": summary["variant"],
        "model": args.model,
        "seed": summary["seed"],
        "seconds": round(time.perf_counter() - start, 2),
        "samples": [
            {k: os.path.relpath(v, output) for k, v in s.items() if k in FILE_KEYS}
            for s in summary["outputs"]
        ],
        "log_likelihoods": summary["log_likelihoods"],
    }
    tmp = output / f".{SUMMARY}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    os.replace(tmp, output / SUMMARY)
    return record


# ----------------------------------------------------------------------------- the gallery


def _events_in_words(text: Any) -> str:
    """Magenta melody events as note names: ``[60, -2, 67]`` -> ``C4 G4``."""
    from modeling.primers import parse_primer_melody

    words = []
    for v in parse_primer_melody(json.dumps(text) if isinstance(text, list) else str(text)):
        if v >= 0:
            words.append(note_name(v))
        elif v == -1:
            words.append("rest")
    return " ".join(words) or "silence"


def _pitches_in_words(text: Any) -> str:
    from modeling.primers import parse_primer_pitches

    pitches = parse_primer_pitches(json.dumps(text) if isinstance(text, list) else str(text))
    return " ".join(note_name(p) for p in sorted(pitches)) + " held together"


def describe_request(spec: Mapping[str, Any], family: str) -> list[tuple[str, str]]:
    """(label, words) rows for a request's primer, chords and controls, as a musician reads them.

    ``family`` may be outside :data:`FAMILY_ORDER` (a model no variant names): plain words then."""
    fam = load_family(family) if family in FAMILY_MODULES else None
    rows: list[tuple[str, str]] = []
    if spec.get("primer_melody") is not None:
        primer = _events_in_words(spec["primer_melody"])
    elif spec.get("primer_pitches") is not None:
        primer = _pitches_in_words(spec["primer_pitches"])
    elif spec.get("primer_midi"):
        primer = f"the MIDI file {Path(str(spec['primer_midi'])).name}"
    else:
        primer = fam.DEFAULT_PRIMER_WORDS if fam else "none (the model starts from silence)"
    rows.append(("Primer", primer))
    takes = fam.REQUEST_COLUMNS if fam else {}
    if "inject_primer_during_generation" in takes and spec.get("inject_primer_during_generation"):
        rows.append(("Primer use", "kept playing throughout; the model harmonises around it"))
    if spec.get("backing_chords"):
        chords = str(spec["backing_chords"])
        played = "played along" if spec.get("render_chords") else "given to the model, not played"
        rows.append(("Chords", f"{chords} ({played})"))
    controls = []
    if spec.get("key") or spec.get("scale"):
        controls.append(f"kept to {spec.get('key') or spec.get('scale')}")
    if spec.get("notes_per_second") is not None:
        controls.append(f"about {spec['notes_per_second']} notes per second")
    if spec.get("pitch_class_histogram") is not None:
        try:
            weights = json.loads(str(spec["pitch_class_histogram"]))
            top = max(weights)
            favoured = [NOTE_NAMES[i] for i, w in enumerate(weights) if w == top and top > 0]
            controls.append(f"pitch classes favouring {', '.join(favoured)}")
        except (ValueError, TypeError):
            controls.append(f"pitch-class histogram {spec['pitch_class_histogram']}")
    if spec.get("controls"):
        controls.append(f"control string {spec['controls']} (key weights; note density)")
    if spec.get("temperature") is not None:
        controls.append(f"temperature {spec['temperature']}")
    rows.append(("Controls", "; ".join(controls) if controls else "none (the model's defaults)"))
    if spec.get("num_steps"):
        steps = int(spec["num_steps"])
        rows.append(("Asked for", f"{steps} sixteenth notes ({plain_number(steps / 16)} bars)"))
    elif spec.get("num_seconds"):
        rows.append(("Asked for", f"{plain_number(float(spec['num_seconds']))} seconds"))
    return rows


def _sample_facts(folder: Path, sample: Mapping[str, str], spec: Mapping[str, Any]) -> dict:
    """Length and note counts of one generated sample, from its JSON record (and MIDI)."""
    facts: dict[str, Any] = {}
    meta = folder / sample.get("json", "")
    record = json.loads(meta.read_text()) if sample.get("json") and meta.is_file() else {}
    facts["seconds"] = finite_number(record.get("total_time"))
    facts["notes"] = record.get("num_notes")
    facts["model"] = record.get("model") if isinstance(record.get("model"), Mapping) else {}
    facts["family"] = record.get("family")
    if spec.get("render_chords") and sample.get("midi"):
        import note_seq

        from modeling.parts import CHORD_INSTRUMENT

        ns = note_seq.midi_file_to_note_sequence(str(folder / sample["midi"]))
        chords = sum(1 for n in ns.notes if n.instrument == CHORD_INSTRUMENT)
        facts["notes"], facts["chord_notes"] = len(ns.notes) - chords, chords
    return facts


def _registered_quality(
    summary: Mapping[str, Any], variant: str, model: Mapping[str, Any]
) -> dict[str, Any]:
    """:func:`quality_verdict` for a generated sample's model (its registered metrics as fallback)."""
    from modeling.variants import VARIANTS

    metrics = model.get("eval_metrics") if isinstance(model.get("eval_metrics"), Mapping) else {}
    ppl = finite_number(metrics.get("eval_perplexity"))
    loss = finite_number(metrics.get("eval_loss"))
    if ppl is None and loss is not None and loss < 50:
        ppl = math.exp(loss)
    cfg = VARIANTS.get(variant)
    uniform = float(cfg.encoding.num_classes) if cfg is not None else None
    return quality_verdict(summary, variant, perplexity=ppl, uniform=uniform)


_GALLERY_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f5f1;color:#1f2328}
header,main{max-width:1100px;margin:0 auto;padding:0 24px}
header{padding-top:18px}h1{margin:0 0 4px}p.lead{color:#555;margin:0 0 12px}
nav{background:#fff;border:1px solid #d9d6cf;border-radius:8px;padding:8px 16px;margin:12px 0}
nav ol{margin:4px 0;padding-left:20px}nav li{margin:2px 0}
section.family>h2{border-bottom:2px solid #2f5d8a;padding-bottom:4px;margin-top:28px}
article{background:#fff;border:1px solid #d9d6cf;border-radius:8px;padding:10px 16px;margin:14px 0}
article h3{margin:4px 0}article p.desc{margin:2px 0 8px;color:#333}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0 10px;
font-size:14px}dt{color:#6a6f76}dd{margin:0}
.verdict-good,.verdict-pass{color:#2e7d32}.verdict-poor,.verdict-fail{color:#b42318}
figure{margin:10px 0}.roll{overflow-x:auto;border:1px solid #ddd;border-radius:4px;background:#fff}
.roll img{display:block;max-width:none}figcaption{font-size:14px;margin:4px 0}
.small{color:#6a6f76;font-size:12.5px}a{color:#2f5d8a}
"""


def write_gallery(
    params: dict[str, Any],
    generated: Path,
    output: Path,
    reports: Path | None = None,
) -> Path:
    """``output/index.html``: one self-contained static page (relative links, no script), so it
    works opened from ``file://`` as well as served; see the module docstring for its contents."""
    from modeling.variants import VARIANTS

    summary = read_summary(reports) if reports is not None else {}
    requests = requests_of(params)
    missing = [n for n in requests if not (generated / n / SUMMARY).is_file()]
    if missing:
        raise ParamsError(
            f"no generated samples for request(s) {', '.join(missing)} under {generated}"
        )
    by_family: dict[str, list[str]] = {}
    sections: dict[str, str] = {}
    for name, spec in requests.items():
        folder = generated / name
        record = json.loads((folder / SUMMARY).read_text())
        spec = {k: v for k, v in spec.items() if k not in TEXT_KEYS}
        variant = str(spec.get("variant") or record.get("variant") or record["model"])
        samples = [_sample_facts(folder, s, spec) for s in record["samples"]]
        cfg = VARIANTS.get(variant)
        family = next((s["family"] for s in samples if s.get("family")), None) or (
            cfg.family if cfg is not None else "other"
        )
        by_family.setdefault(family, []).append(name)
        title = str(requests[name].get("title") or name.replace("_", " ").capitalize())
        description = str(requests[name].get("description") or "")
        model = samples[0]["model"] if samples else {}
        version = model.get("version")
        quality = _registered_quality(summary, variant, model)
        rows = [
            ("Model", f"{variant}" + (f" version {version}" if version else "")),
            ("Quality", quality["text"]),
            *describe_request(spec, family),
        ]
        parts = [f"<article id='{html.escape(name)}'><h3>{html.escape(title)}</h3>"]
        if description:
            parts.append(f"<p class='desc'>{html.escape(description)}</p>")
        parts.append("<dl>")
        for label, words in rows:
            cls = f" class='verdict-{quality['verdict']}'" if label == "Quality" else ""
            parts.append(f"<dt>{html.escape(label)}</dt><dd{cls}>{html.escape(words)}</dd>")
        parts.append("</dl>")
        for i, (sample, facts) in enumerate(zip(record["samples"], samples, strict=True), 1):
            link = {k: html.escape(os.path.relpath(folder / v, output)) for k, v in sample.items()}
            length = f"{facts['seconds']:.1f} s long" if facts.get("seconds") else "length unknown"
            counts = f"{facts['notes']} notes" if facts.get("notes") is not None else ""
            if facts.get("chord_notes"):
                counts = f"{facts['notes']} melody notes + {facts['chord_notes']} chord notes"
            caption = " · ".join(x for x in (f"<b>Sample {i}</b>", length, counts) if x)
            parts.append(
                f"<figure><figcaption>{caption}</figcaption><div class='roll'>"
                f"<img src='{link['piano_roll']}' alt='piano roll of {html.escape(title)}, "
                f"sample {i}' loading='lazy'></div>"
            )
            if "audio" in link:
                parts.append(f"<audio controls preload='none' src='{link['audio']}'></audio>")
            meta = link.get("json", link["midi"].replace(".mid", ".json"))
            parts.append(
                f"<div><a href='{link['midi']}' download>MIDI</a> · "
                f"<a href='{meta}'>details (JSON)</a></div></figure>"
            )
        parts.append(
            f"<p class='small'>Request <code>{html.escape(name)}</code> · seed {record['seed']}"
            f" · generated in {record['seconds']:.1f} s of computer time</p></article>"
        )
        sections[name] = "\n".join(parts)

    families = sorted(
        by_family, key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else 99, f)
    )
    toc = ["<nav aria-label='Contents'><b>Contents</b><ol>"]
    body = []
    for fam in families:
        heading, blurb = (
            load_family(fam).GALLERY_HEADING if fam in FAMILY_MODULES else (fam.capitalize(), "")
        )
        toc.append(f"<li><a href='#family-{fam}'>{html.escape(heading)}</a><ol>")
        for name in by_family[fam]:
            title = str(requests[name].get("title") or name)
            toc.append(f"<li><a href='#{html.escape(name)}'>{html.escape(title)}</a></li>")
        toc.append("</ol></li>")
        body.append(
            f"<section class='family' id='family-{fam}'><h2>{html.escape(heading)}</h2>"
            f"<p>{html.escape(blurb)}</p>"
        )
        body.extend(sections[n] for n in by_family[fam])
        body.append("</section>")
    toc.append("</ol></nav>")
    page = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>motif: generated samples</title><style>{_GALLERY_CSS}</style></head><body>",
        "<header><h1>motif: generated samples</h1><p class='lead'>What each registered model "
        "plays from the requests in <code>params.yaml</code>. Each piano roll shows time left "
        "to right and pitch bottom to top; the grey band is the primer the model continued, "
        "blue notes are generated, orange ones are backing chords.</p>",
        *toc,
        "</header><main>",
        *body,
        "</main></body></html>",
    ]
    output.mkdir(parents=True, exist_ok=True)
    path = output / "index.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(page))
    os.replace(tmp, path)
    return path


def _run_and_say(params: dict[str, Any], name: str, output: Path) -> None:
    record = run_request(params, name, output)
    print(
        f"generate[{name}]: {len(record['samples'])} sample(s) from {record['model']} in "
        f"{record['seconds']:.1f} s -> {output}",
        flush=True,
    )


@command("batch")
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m modeling.batch", description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="generate one request")
    p_run.add_argument("--request", required=True, help="a name from generate.requests")
    p_run.add_argument("--output", required=True, help="e.g. data/generated/NAME")
    p_all = sub.add_parser("run-all", help="generate every request, each into OUTPUT/<request>")
    p_all.add_argument("--output", required=True, help="e.g. data/generated")
    p_gal = sub.add_parser("gallery", help="write the index page of every request's samples")
    p_gal.add_argument("--generated", default="data/generated")
    p_gal.add_argument("--output", default="data/gallery")
    p_gal.add_argument(
        "--reports",
        default=DEFAULT_REPORTS,
        help="the evaluate stage's summary.json, for quality verdicts (skipped when absent)",
    )
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if args.cmd == "run":
            _run_and_say(params, args.request, Path(args.output))
        elif args.cmd == "run-all":
            failed = []
            for name in requests_of(params):  # one bad request does not stop the others
                try:
                    _run_and_say(params, name, Path(args.output) / name)
                except ParamsError as exc:
                    failed.append(str(exc))
            if failed:
                raise ParamsError(f"{len(failed)} request(s) failed: {'; '.join(failed)}")
        else:
            path = write_gallery(
                params, Path(args.generated), Path(args.output), Path(args.reports)
            )
            print(f"gallery: {path}")
    except ParamsError as exc:
        raise UsageError(str(exc)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
