"""The gallery page (``python -m modeling.batch gallery``) and the quality verdicts it shares with
the Studio.

Generated folders are written the way the generate stage writes them: ``write_outputs`` renders
real MIDI, piano rolls and JSON records, and ``request.json`` is the record ``run_request`` leaves.
The page is then opened from ``file://`` in Debian's headless Chromium (as the Studio's browser
test does), which checks every piano roll loads, and saves ``gallery.png`` with the Studio's
screenshots (``$MOTIF_SCREENSHOTS`` or a temporary folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from note_seq.protobuf import music_pb2

from modeling import batch
from modeling.generate import write_outputs

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PARAMS = {
    "generate": {
        "seed": 1,
        "requests": {
            "improv_attention": {
                "title": "Improvising over C G Am F",
                "description": "A melody over a pop progression, chords played along.",
                "variant": "attention_improv",
                "backing_chords": "C G Am F",
                "primer_melody": "[60]",
                "render_chords": True,
            },
            "melody_twinkle": {
                "title": "Twinkle, continued",
                "description": "The first bar of Twinkle Twinkle, continued.",
                "variant": "attention_rnn",
                "primer_melody": "[60, -2, 60, -2, 67, -2, 67, -2]",
                "num_steps": 64,
            },
            "performance_density": {
                "title": "A sparse piece",
                "description": "About four notes a second.",
                "variant": "density_conditioned_performance_with_dynamics",
                "notes_per_second": "4",
                "num_seconds": 10,
            },
        },
    }
}


def _sequence(family: str) -> music_pb2.NoteSequence:
    ns = music_pb2.NoteSequence()
    for i in range(16):
        ns.notes.add(
            pitch=60 + (i * 5) % 12, start_time=i * 0.5, end_time=i * 0.5 + 0.4, velocity=90
        )
    if family == "improv":
        for bar, (name, root) in enumerate([("C", 48), ("G", 55), ("Am", 57), ("F", 53)]):
            ta = ns.text_annotations.add(time=bar * 2.0, text=name)
            ta.annotation_type = music_pb2.NoteSequence.TextAnnotation.CHORD_SYMBOL
            for p in (root, root + 7):
                ns.notes.add(
                    pitch=p, start_time=bar * 2.0, end_time=bar * 2.0 + 2, velocity=70, instrument=1
                )
    ns.total_time = 8.0
    return ns


def write_generated(root: Path) -> Path:
    """A ``data/generated`` tree for :data:`PARAMS`, one sample per request."""
    families = {
        "improv_attention": "improv",
        "melody_twinkle": "melody",
        "performance_density": "performance",
    }
    for name, family in families.items():
        spec = PARAMS["generate"]["requests"][name]
        folder = root / name
        stem = f"{spec['variant']}_1_001"
        ns = _sequence(family)
        record = {
            "variant": spec["variant"],
            "family": family,
            "total_time": ns.total_time,
            "num_notes": len(ns.notes),
            "model": {"version": 3, "eval_metrics": {"eval_perplexity": 4.0}},
        }
        (files,) = write_outputs(
            folder, [stem], [ns], [record], primer_seconds=0.5, audio="none", overwrite=True
        )
        (folder / batch.SUMMARY).write_text(
            json.dumps(
                {
                    "request": name,
                    "model": f"models:/{spec['variant']}@champion",
                    "seed": 1,
                    "seconds": 3.4,
                    "log_likelihoods": [-20.0],
                    "samples": [
                        {
                            k: os.path.relpath(v, folder)
                            for k, v in files.items()
                            if k in batch.FILE_KEYS
                        }
                    ],
                }
            )
        )
    return root


def test_quality_verdict_reads_what_exists() -> None:
    assert batch.quality_verdict({}, "x")["text"] == "Not evaluated yet."
    fallback = batch.quality_verdict({}, "x", perplexity=4.0, uniform=40)
    assert fallback["verdict"] == "good" and "much better than guessing" in fallback["text"]
    summary = {
        "x": {"example_set": "mel", "eval": {"perplexity": 30.0}},
        "uniform_random": {"mel": {"perplexity": 38.0}},
    }
    report = batch.quality_verdict(summary, "x", perplexity=4.0, uniform=40)
    assert report["verdict"] == "fair" and "30.0 against 38" in report["text"]
    failed = {
        "x": {
            "quality": {
                "pass": False,
                "checks": {"pitch_range": {"pass": False}, "rhythm": {"pass": True}},
            }
        }
    }
    verdict = batch.quality_verdict(failed, "x", perplexity=4.0, uniform=40)
    assert verdict == {
        "verdict": "fail",
        "text": "Fails its quality checks (pitch range).",
        "passed": False,
    }
    odd = {"x": {"quality": "later", "eval": ["not", "a", "mapping"]}, "uniform_random": 3}
    assert batch.quality_verdict(odd, "x")["verdict"] == "unknown"
    assert batch.plain_number(1e6) == "1000000" and batch.plain_number(0.25) == "0.25"


def test_request_titles_are_not_generate_flags(tmp_path: Path) -> None:
    spec = PARAMS["generate"]["requests"]["melody_twinkle"]
    argv = batch.request_argv("melody_twinkle", dict(spec), tmp_path, 1)
    assert "--title" not in argv and "--description" not in argv
    batch.parse_request("melody_twinkle", argv)  # the generation CLI's parser accepts the rest


def test_a_bad_request_or_command_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every parser error of a request names the request (a ``ParamsError``, never the generation
    CLI's own usage error), and the batch CLI answers a bad command in one line, exit code 2."""
    from pipelines.params import ParamsError

    for argv, words in (
        (["--output_dir", str(tmp_path), "--num_steps", "many"], "invalid int value"),
        (["--model", "models:/x@champion"], "required: --output_dir"),
    ):
        with pytest.raises(ParamsError, match=f"^generate.requests.odd: .*{words}"):
            batch.parse_request("odd", argv)
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(PARAMS))
    capsys.readouterr()
    assert batch.main(["--params", str(params), "publish"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("batch: ") and "invalid choice: 'publish'" in err and "\n" not in err


def test_run_all_generates_every_request_and_names_each_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run-all`` (the DVC stage) runs every request into ``<output>/<request>`` in one process;
    a request that fails does not stop the others, and the stage then exits 2 with one line
    naming each failure."""
    from pipelines.params import ParamsError

    done: list[tuple[str, Path]] = []

    def fake_run(params: dict, name: str, output: Path) -> dict:
        if name == "melody_twinkle":
            raise ParamsError(f"generate.requests.{name}: no champion")
        done.append((name, output))
        return {"samples": [{}], "model": f"models:/{name}", "seconds": 0.1}

    monkeypatch.setattr(batch, "run_request", fake_run)
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(PARAMS))
    out = tmp_path / "generated"
    assert batch.main(["--params", str(params), "run-all", "--output", str(out)]) == 2
    others = [n for n in PARAMS["generate"]["requests"] if n != "melody_twinkle"]
    assert done == [(n, out / n) for n in others]
    captured = capsys.readouterr()
    assert captured.out.count("generate[") == len(others)
    err = captured.err.strip()
    assert "1 request(s) failed: generate.requests.melody_twinkle: no champion" in err
    assert "\n" not in err


def test_gallery_groups_by_family_and_explains_each_request(tmp_path: Path) -> None:
    generated = write_generated(tmp_path / "generated")
    reports = tmp_path / "summary.json"
    reports.write_text(json.dumps({"attention_rnn": {"quality": {"pass": True}}}))
    page = batch.write_gallery(PARAMS, generated, tmp_path / "gallery", reports)
    text = page.read_text()
    # table of contents and family sections in musical order: melody, improv, performance
    order = [text.index(f"id='family-{f}'") for f in ("melody", "improv", "performance")]
    assert order == sorted(order) and "<nav" in text and "href='#melody_twinkle'" in text
    assert "Twinkle, continued" in text and "The first bar of Twinkle" in text
    assert "Passes its quality checks." in text  # from the report
    assert "much better than guessing" in text  # the others: their registered perplexity
    assert "C4 C4 G4 G4" in text and "C G Am F (played along)" in text
    assert "about 4 notes per second" in text and "64 sixteenth notes (4 bars)" in text
    assert "8.0 s long" in text and "generated in 3.4 s of computer time" in text
    assert "16 melody notes + 8 chord notes" in text
    assert "attention_improv version 3" in text


@pytest.mark.browser
def test_gallery_works_from_file_url(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    generated = write_generated(tmp_path / "generated")
    page_path = batch.write_gallery(PARAMS, generated, tmp_path / "gallery", None)
    shots = Path(os.environ.get("MOTIF_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_path.resolve().as_uri())
            page.wait_for_function(
                "() => [...document.images].length === 3 && [...document.images].every("
                "i => { i.loading = 'eager'; return i.complete && i.naturalWidth > 0; })",
                timeout=20_000,
            )
            toc = page.eval_on_selector_all("nav a", "as => as.map(a => a.textContent)")
            assert toc[:2] == ["Melodies", "Twinkle, continued"]
            page.click("nav a[href='#performance_density']")
            assert page.evaluate("() => location.hash") == "#performance_density"
            page.screenshot(path=str(shots / "gallery.png"), full_page=True)
        finally:
            browser.close()


def test_gallery_sections_take_the_family_headings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each section's heading and blurb are its family's ``GALLERY_HEADING``."""
    from modeling.families import load_family

    monkeypatch.setattr(load_family("improv"), "GALLERY_HEADING", ("Lead sheets", "Over chords."))
    generated = write_generated(tmp_path / "generated")
    text = batch.write_gallery(PARAMS, generated, tmp_path / "gallery", None).read_text()
    assert "<h2>Lead sheets</h2><p>Over chords.</p>" in text
    heading, blurb = load_family("melody").GALLERY_HEADING
    assert f"<h2>{heading}</h2><p>{blurb}</p>" in text
