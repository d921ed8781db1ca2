"""The batch-generation stages: requests from ``params.yaml:generate.requests`` against the registry.

    python -m modeling.batch run --request NAME --params params.yaml --output data/generated/NAME
    python -m modeling.batch gallery --params params.yaml --generated data/generated --output data/gallery

A request names a ``variant`` (the model is ``models:/<variant>@champion`` unless ``model`` gives
another registry URI) and any of ``modeling.generate``'s flags, spelled as on its command line
without the dashes (Magenta's names: ``primer_melody``, ``primer_pitches``, ``backing_chords``,
``controls``, ``num_steps`` ...). ``run`` goes through :func:`modeling.generate.run` — the same
code as the CLI, which renders aside and moves files in only when every sample succeeded. One DVC stage per request means a changed variant regenerates only its
own requests. ``gallery`` writes one page showing every sample's piano roll with its audio, MIDI
and metadata.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from modeling.generate import RequestError, build_parser, run
from pipelines.params import ParamsError, load_params

SUMMARY = "request.json"
FILE_KEYS = ("midi", "piano_roll", "audio", "json")


def requests_of(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    requests = (params.get("generate") or {}).get("requests") or {}
    if not requests:
        raise ParamsError("generate.requests is empty: nothing to generate")
    return requests


def request_argv(name: str, spec: dict[str, Any], output_dir: Path, seed: int) -> list[str]:
    """The ``modeling.generate`` command line of one request."""
    spec = dict(spec)
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
    parser.exit_on_error = False
    try:
        args, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise ParamsError(f"generate.requests.{name}: {exc}") from exc
    if unknown:
        raise ParamsError(f"generate.requests.{name}: unknown flag(s) {' '.join(unknown)}")
    return args


def run_request(params: dict[str, Any], name: str, output: Path) -> dict[str, Any]:
    """Generate one request into ``output`` (built aside, then swapped in)."""
    requests = requests_of(params)
    if name not in requests:
        raise ParamsError(f"unknown request {name!r}; valid: {', '.join(requests)}")
    seed = int((params.get("generate") or {}).get("seed", params.get("seed", 0)))
    args = parse_request(name, request_argv(name, dict(requests[name]), output, seed))
    args.overwrite = True  # a stage's output is its own: DVC removed the old one before the run
    start = time.perf_counter()
    try:
        summary = run(args)  # renders aside and moves files in only when every sample succeeded
    except RequestError as exc:
        raise ParamsError(f"generate.requests.{name}: {exc}") from exc
    record = {
        "request": name,
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


def write_gallery(params: dict[str, Any], generated: Path, output: Path) -> Path:
    """``output/index.html``: every request's samples (piano roll, audio, MIDI, metadata)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>motif: generated samples</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}figure{margin:1em 0}"
        "img{max-width:100%;border:1px solid #ddd}code{background:#f4f4f4}</style></head><body>",
        "<h1>motif: generated samples</h1>",
    ]
    missing = []
    for name in requests_of(params):
        summary_path = generated / name / SUMMARY
        if not summary_path.is_file():
            missing.append(name)
            continue
        record = json.loads(summary_path.read_text())
        parts.append(
            f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2><p><code>"
            f"{html.escape(record['model'])}</code>, seed {record['seed']}, "
            f"{record['seconds']:.1f} s</p>"
        )
        for sample, ll in zip(record["samples"], record["log_likelihoods"], strict=True):
            link = {
                k: html.escape(os.path.relpath(generated / name / v, output))
                for k, v in sample.items()
            }
            parts.append(f"<figure><img src='{link['piano_roll']}' alt='piano roll of {name}'>")
            if "audio" in link:
                parts.append(f"<br><audio controls preload='none' src='{link['audio']}'></audio>")
            meta = link.get("json", link["midi"].replace(".mid", ".json"))
            parts.append(
                f"<br><a href='{link['midi']}'>MIDI</a> · <a href='{meta}'>metadata</a> · "
                f"log-likelihood {ll:.1f}</figure>"
            )
    if missing:
        raise ParamsError(
            f"no generated samples for request(s) {', '.join(missing)} under {generated}"
        )
    parts.append("</body></html>")
    output.mkdir(parents=True, exist_ok=True)
    path = output / "index.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(parts))
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modeling.batch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--params", default="params.yaml")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="generate one request")
    p_run.add_argument("--request", required=True, help="a name from generate.requests")
    p_run.add_argument("--output", required=True, help="e.g. data/generated/NAME")
    p_gal = sub.add_parser("gallery", help="write the index page of every request's samples")
    p_gal.add_argument("--generated", default="data/generated")
    p_gal.add_argument("--output", default="data/gallery")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if args.cmd == "run":
            record = run_request(params, args.request, Path(args.output))
            print(
                f"generate[{args.request}]: {len(record['samples'])} sample(s) from "
                f"{record['model']} in {record['seconds']:.1f} s -> {args.output}"
            )
        else:
            path = write_gallery(params, Path(args.generated), Path(args.output))
            print(f"gallery: {path}")
    except ParamsError as exc:
        print(f"batch: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
