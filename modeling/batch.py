"""The batch-generation stage: every request in ``params.yaml:generate.requests`` against the registry.

    python -m modeling.batch --params params.yaml --output data/generated

A request names a model (``models:/<name>@champion`` by default, from ``variant``) and any of
``modeling.generate``'s flags, spelled as on its command line without the dashes (Magenta's
names: ``primer_melody``, ``primer_pitches``, ``backing_chords``, ``controls``, ``num_steps`` ...).
Each request runs through :func:`modeling.generate.run` — the same code as the CLI — into
``OUTPUT/<request>/``; then ``OUTPUT/index.html`` shows every sample's piano roll with its audio
and MIDI. The whole output directory is built aside and swapped in at the end, so a failed request
leaves the previous results intact.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from modeling.generate import RequestError, build_parser, run
from pipelines.params import ParamsError, load_params


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


def _parse(name: str, argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    parser.exit_on_error = False
    try:
        args, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise ParamsError(f"generate.requests.{name}: {exc}") from exc
    if unknown:
        raise ParamsError(f"generate.requests.{name}: unknown flag(s) {' '.join(unknown)}")
    return args


def write_index(output: Path, results: dict[str, dict[str, Any]]) -> Path:
    """One page: every request, every sample's piano roll, audio player and MIDI link."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>motif: generated samples</title>",
        "<style>body{font-family:sans-serif;margin:2em}figure{margin:1em 0}"
        "img{max-width:100%;border:1px solid #ddd}code{background:#f4f4f4}</style></head><body>",
        "<h1>motif: generated samples</h1>",
    ]
    for name, result in results.items():
        parts.append(f"<h2>{html.escape(name)}</h2><p><code>{html.escape(result['model'])}</code> "
                     f"seed {result['seed']}, {result['seconds']:.1f} s</p>")
        for sample in result["outputs"]:
            rel = {k: os.path.relpath(v, output) for k, v in sample.items() if isinstance(v, str)
                   and k in ("midi", "piano_roll", "audio", "json")}
            parts.append("<figure>")
            parts.append(f"<img src='{html.escape(rel['piano_roll'])}' alt='piano roll'>")
            if "audio" in rel:
                parts.append(f"<br><audio controls src='{html.escape(rel['audio'])}'></audio>")
            parts.append(f"<br><a href='{html.escape(rel['midi'])}'>MIDI</a> · "
                         f"<a href='{html.escape(rel['json'])}'>metadata</a></figure>")
    parts.append("</body></html>")
    path = output / "index.html"
    path.write_text("\n".join(parts))
    return path


def run_batch(params: dict[str, Any], output: Path, only: list[str] | None = None) -> dict[str, Any]:
    """Run every request into a fresh directory, then swap it in for ``output``."""
    requests = (params.get("generate") or {}).get("requests") or {}
    if not requests:
        raise ParamsError("generate.requests is empty: nothing to generate")
    if only:
        missing = sorted(set(only) - set(requests))
        if missing:
            raise ParamsError(f"unknown request(s) {', '.join(missing)}; valid: {', '.join(requests)}")
        requests = {k: v for k, v in requests.items() if k in only}
    seed = int((params.get("generate") or {}).get("seed", params.get("seed", 0)))
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    results: dict[str, dict[str, Any]] = {}
    try:
        argvs = {n: request_argv(n, dict(s), staging / n, seed) for n, s in requests.items()}
        parsed = {n: _parse(n, a) for n, a in argvs.items()}  # every request checked first
        for name, args in parsed.items():
            start = time.perf_counter()
            try:
                summary = run(args)
            except RequestError as exc:
                raise ParamsError(f"generate.requests.{name}: {exc}") from exc
            results[name] = {"model": args.model, "seed": summary["seed"],
                             "outputs": summary["outputs"],
                             "seconds": time.perf_counter() - start}
            print(f"generate[{name}]: {summary['num_outputs']} sample(s) from {args.model} "
                  f"in {results[name]['seconds']:.1f} s", file=sys.stderr)
        write_index(staging, results)
        (staging / "summary.json").write_text(json.dumps(
            {n: {"model": r["model"], "seed": r["seed"], "samples": len(r["outputs"])}
             for n, r in results.items()}, indent=2, sort_keys=True))
        if output.exists():
            old = output.with_name(f".{output.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(output, old)
            os.replace(staging, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modeling.batch", description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--output", default="data/generated")
    parser.add_argument("--only", nargs="*", help="run only these request names")
    args = parser.parse_args(argv)
    try:
        results = run_batch(load_params(args.params), Path(args.output), args.only)
    except ParamsError as exc:
        print(f"batch: {exc}", file=sys.stderr)
        return 2
    total = sum(len(r["outputs"]) for r in results.values())
    print(f"batch: {total} samples from {len(results)} requests -> {Path(args.output) / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
