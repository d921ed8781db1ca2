"""``python -m modeling.generate``: Magenta's ``*_rnn_generate`` flags -> a request -> files.

    python -m modeling.generate --config attention_rnn --output_dir out/ --num_outputs 10 \\
        --num_steps 128 --primer_melody "[60, -2, 60, -2, 67, -2, 67, -2]" [--key "D minor"]
    python -m modeling.generate --model models:/polyphony@champion --output_dir out/ \\
        --primer_melody "[60, -2, 60, -2, 67, -2, 67, -2]" --condition_on_primer=false \\
        --inject_primer_during_generation=true
    python -m modeling.generate --checkpoint runs/perf/checkpoints/best.pt --output_dir out/ \\
        --controls "2,0,1,1,0,1,0,1,1,0,0,1;4" --num_seconds 20

:func:`request_from_args` parses every flag value with :mod:`modeling.primers` /
:mod:`modeling.scales` before any model is loaded; :func:`run` loads the model
(:mod:`~modeling.generation.loading`), generates (:mod:`~modeling.generation.engine`) and writes
the files (:mod:`~modeling.generation.outputs`). Bad input is one line and exit 2
(:func:`modeling.cli.command`).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from modeling import primers as P
from modeling.cli import ArgumentParser, UsageError, command
from modeling.primers import RequestError
from modeling.scales import ScaleError
from modeling.scales import resolve as resolve_scale

from .engine import generate
from .loading import apply_hparams, load_model
from .outputs import _json_safe, model_record, output_stem, sample_record, write_outputs
from .request import GenerateError, Request

AUDIO_FORMATS = ("wav", "none")


def _bool(text: str) -> bool:
    low = str(text).strip().lower()
    if low in ("true", "1", "yes", "y", "t"):
        return True
    if low in ("false", "0", "no", "n", "f"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m modeling.generate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate music from a trained motif model (Magenta's *_rnn_generate flags).",
        epilog="examples:\n"
        "  python -m modeling.generate --config attention_rnn --output_dir out "
        "--num_outputs 10 --num_steps 128 \\\n"
        '      --primer_melody "[60, -2, 60, -2, 67, -2, 67, -2]" --key "C major"\n'
        "  python -m modeling.generate --model models:/chord_pitches_improv@champion "
        "--output_dir out \\\n"
        '      --backing_chords "C G Am F C G F C" --render_chords\n'
        "  python -m modeling.generate --model models:/polyphony@champion --output_dir out "
        '\\\n      --primer_pitches "[67,64,60]" --condition_on_primer=true '
        "--inject_primer_during_generation=false\n"
        "  python -m modeling.generate --config multiconditioned_performance_with_dynamics "
        "--output_dir out \\\n"
        '      --controls "2,0,1,1,0,1,0,1,1,0,0,1;4" --num_seconds 20\n',
    )
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        metavar="URI",
        help="registered model, e.g. models:/attention_rnn@champion or "
        "models:/attention_rnn/3 (MLflow at $MLFLOW_TRACKING_URI)",
    )
    g.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="checkpoint file or training output dir, e.g. runs/x/checkpoints/best.pt",
    )
    g.add_argument(
        "--config",
        metavar="VARIANT",
        help="variant name, e.g. attention_rnn; alone it means "
        "models:/<VARIANT>@champion, with --model/--checkpoint it must match",
    )
    g.add_argument(
        "--hparams",
        default="",
        help='Magenta-style overrides, e.g. "rnn_layer_sizes=[128,128]"; '
        "architecture keys must match the model, training keys are ignored",
    )
    g = p.add_argument_group("output")
    g.add_argument(
        "--output_dir",
        required=True,
        metavar="DIR",
        help="where <variant>_<seed>_<index>.mid/.png/.wav/.json go, e.g. out/",
    )
    g.add_argument("--num_outputs", type=int, default=10, help="samples to generate (default 10)")
    g.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed, e.g. 7; the same seed and flags give the same bytes "
        "(default: a random seed, recorded in the names and JSON)",
    )
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument(
        "--audio",
        choices=AUDIO_FORMATS,
        default="wav",
        help="wav (FluidSynth + GM soundfont, else a plain synthesiser) or none",
    )
    g = p.add_argument_group("length")
    g.add_argument(
        "--num_steps",
        type=int,
        default=None,
        help="total length incl. primer in 16th-note steps (melody/polyphony, default "
        "128; improv: the chord grid) or 10 ms steps (performance, default "
        "3000), e.g. 256",
    )
    g.add_argument(
        "--num_bars", type=float, default=None, help="total length in 4/4 bars instead, e.g. 8"
    )
    g.add_argument(
        "--num_seconds", type=float, default=None, help="total length in seconds instead, e.g. 30"
    )
    g.add_argument(
        "--qpm",
        type=float,
        default=None,
        help="tempo in quarters per minute, e.g. 100 (default 120; a MIDI primer's "
        "tempo wins, as in Magenta)",
    )
    g = p.add_argument_group("primer")
    g.add_argument(
        "--primer_melody",
        default=None,
        help='Magenta melody events, e.g. "[60, -2, 60, -2, 67, -2, 67, -2]" '
        "(-2 hold, -1 note off); default for melodies: one middle C",
    )
    g.add_argument(
        "--primer_pitches",
        default=None,
        help='a chord held for a quarter note (polyphony/performance), e.g. "[67,64,60]"',
    )
    g.add_argument(
        "--primer_midi",
        default=None,
        metavar="FILE",
        help="a MIDI file to continue, e.g. primer.mid",
    )
    g.add_argument(
        "--condition_on_primer",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="polyphony: feed the primer to the model before generating, e.g. "
        "--condition_on_primer=true (default false)",
    )
    g.add_argument(
        "--inject_primer_during_generation",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="polyphony: play the primer's notes at their steps while generating (to "
        "harmonise a melody), e.g. --inject_primer_during_generation=false "
        "(default true)",
    )
    g = p.add_argument_group("improv")
    g.add_argument(
        "--backing_chords",
        default=None,
        help="chord symbols in note-seq's grammar, e.g. \"C G Am F C7#9 Bbmaj7/D "
        'N.C." (default "C G Am F C G F C")',
    )
    g.add_argument(
        "--steps_per_chord",
        type=int,
        default=16,
        help="16th-note steps per chord, e.g. 8 (default 16 = one bar)",
    )
    g.add_argument(
        "--render_chords",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="also play the chords in the MIDI as a second instrument",
    )
    g = p.add_argument_group("performance controls")
    g.add_argument(
        "--notes_per_second",
        default=None,
        help='note density, e.g. 4, or a list spread over the piece, e.g. "[2, 8]"',
    )
    g.add_argument(
        "--pitch_class_histogram",
        default=None,
        help='12 weights C..B, e.g. "[2, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1]", or a '
        "list of such lists spread over the piece",
    )
    g.add_argument(
        "--controls",
        default=None,
        help='histogram;density in one string, e.g. "2,0,1,1,0,1,0,1,1,0,0,1;4"',
    )
    g = p.add_argument_group("sampling")
    g.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="softmax temperature, e.g. 0.9 (< 1 tamer, > 1 wilder; default 1.0)",
    )
    g.add_argument("--beam_size", type=int, default=1, help="beam search width, e.g. 4")
    g.add_argument("--branch_factor", type=int, default=1, help="branches per beam entry, e.g. 2")
    g.add_argument(
        "--steps_per_iteration",
        type=int,
        default=1,
        help="events sampled between beam prunings, e.g. 1",
    )
    g.add_argument(
        "--key", default=None, help='keep every note in a key, e.g. "D minor", "F# dorian", "Bb"'
    )
    g.add_argument(
        "--scale",
        default=None,
        help="scale on --key's tonic (e.g. blues, minor_pentatonic, dorian) or explicit "
        'pitch classes, e.g. "C D Eb G A"',
    )
    g.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads while generating (default 1: one step is too small to "
        "split; 0 keeps torch's default)",
    )
    g.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return p


def request_from_args(args: argparse.Namespace) -> Request:
    """Parse every flag value (no model needed); :class:`RequestError` on bad input."""
    req = Request(
        num_outputs=args.num_outputs,
        num_steps=args.num_steps,
        num_bars=args.num_bars,
        num_seconds=args.num_seconds,
        condition_on_primer=args.condition_on_primer,
        inject_primer_during_generation=args.inject_primer_during_generation,
        backing_chords=args.backing_chords,
        steps_per_chord=args.steps_per_chord,
        render_chords=args.render_chords,
        temperature=args.temperature,
        beam_size=args.beam_size,
        branch_factor=args.branch_factor,
        steps_per_iteration=args.steps_per_iteration,
        qpm=args.qpm,
        threads=args.threads or None,
        seed=args.seed if args.seed is not None else secrets.randbelow(2**31),
    )
    if req.seed < 0:
        raise GenerateError("seed", f"{{seed}} must be >= 0, got {req.seed}")
    if args.primer_melody is not None:
        req.primer_melody = P.parse_primer_melody(args.primer_melody)
    if args.primer_pitches is not None:
        req.primer_pitches = P.parse_primer_pitches(args.primer_pitches)
    if args.primer_midi is not None:
        req.primer_midi = P.read_primer_midi(args.primer_midi)
        req.primer_midi_path = args.primer_midi
    if args.backing_chords is not None:
        P.parse_backing_chords(args.backing_chords, args.steps_per_chord)
    elif args.steps_per_chord < 1:
        raise GenerateError(
            "steps_per_chord", f"{{steps_per_chord}} must be >= 1, got {args.steps_per_chord}"
        )
    if args.notes_per_second is not None:
        req.notes_per_second = P.parse_density(args.notes_per_second)
    if args.pitch_class_histogram is not None:
        req.pitch_class_histogram = P.parse_histogram(args.pitch_class_histogram)
    if args.controls is not None:
        hist, density = P.parse_controls(args.controls)
        if hist is not None:
            if req.pitch_class_histogram is not None:
                raise GenerateError(
                    "pitch_class_histogram",
                    "{controls} and {pitch_class_histogram} both give a histogram",
                )
            req.pitch_class_histogram = hist
        if density is not None:
            if req.notes_per_second is not None:
                raise GenerateError(
                    "notes_per_second", "{controls} and {notes_per_second} both give a density"
                )
            req.notes_per_second = density
    try:
        req.scale = resolve_scale(args.key, args.scale)
    except ScaleError as exc:
        raise GenerateError("key", str(exc), topic="key/scale") from None
    req.check()
    return req


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole CLI flow; raises :class:`RequestError` for anything the user can fix."""
    started = time.perf_counter()
    req = request_from_args(args)
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise GenerateError(
            "output_dir", f"{{output_dir}} {output_dir} exists and is not a directory"
        )
    model, meta = load_model(args.model, args.checkpoint, args.config)
    hp = apply_hparams(model, args.hparams)
    stems = [output_stem(model.variant, req.seed, i + 1) for i in range(req.num_outputs)]
    exts = [".mid", ".png", ".json"] + ([".wav"] if args.audio == "wav" else [])
    if not args.overwrite:
        clash = [
            output_dir / (s + e) for s in stems for e in exts if (output_dir / (s + e)).exists()
        ]
        if clash:
            raise GenerateError(
                "output_dir",
                f"{clash[0]} exists ({len(clash)} output file(s) would be "
                "overwritten); use {overwrite} or another {output_dir}",
            )
    loaded = time.perf_counter()

    progress = None
    if not args.quiet:

        def progress(step: int, finished: int) -> None:
            if step % 256 == 0:
                print(f"generate: {step} events, {finished} rows done", file=sys.stderr, flush=True)

    plan, samples, notes = generate(model, req, on_step=progress)
    gen_seconds = time.perf_counter() - loaded
    flags = {k: v for k, v in vars(args).items() if k != "quiet"}
    flags["seed"] = req.seed
    records = [
        sample_record(
            model,
            req,
            plan,
            s,
            ns,
            i + 1,
            model=model_record(model, meta),
            flags=flags,
            hparams_override=hp,
            generation_seconds=round(gen_seconds, 4),
        )
        for i, (s, ns) in enumerate(zip(samples, notes, strict=True))
    ]
    files = write_outputs(
        output_dir,
        stems,
        notes,
        records,
        primer_seconds=plan.primer_seconds,
        audio=args.audio,
        overwrite=args.overwrite,
    )
    return {
        "outputs": files,
        "variant": model.variant,
        "seed": req.seed,
        "num_outputs": req.num_outputs,
        "load_seconds": round(loaded - started, 3),
        "generation_seconds": round(gen_seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "log_likelihoods": [s.log_likelihood for s in samples],
    }


@command("generate")
def main(argv: list[str] | None = None) -> int:
    """The CLI: one JSON summary line on stdout; bad input is one stderr line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except RequestError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("generate: interrupted; nothing was written", file=sys.stderr)
        return 130
    if not args.quiet:
        for f in summary["outputs"]:
            print(f"wrote {f['midi']}", file=sys.stderr)
    print(json.dumps(_json_safe(summary)))
    return 0
