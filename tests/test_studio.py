"""The Studio end to end: a tiny model trained and registered here, the JSON API through
Starlette's TestClient, ``python -m studio`` as a process, and the page in headless Chromium.

The model is attention_rnn trained for a few steps on the tiny melody set of ``tests/_examples.py``
and registered in a throw-away MLflow store, so every request goes through the real registry,
``weights_only`` loading, ``modeling.generate`` and ``modeling.render`` (FluidSynth or note-seq's
synthesiser). Raw HTTP to the process checks that foreign ``Host`` names (DNS rebinding) and
cross-origin ``POST`` requests are refused while the page's own requests and curl's pass. The
browser test drives Debian's Chromium through Playwright (no browser download) and saves
screenshots in a temporary folder, or in ``$MOTIF_SCREENSHOTS`` when set: ``studio.png`` there is
the one the README shows (refresh it with ``MOTIF_SCREENSHOTS=docs pytest tests/test_studio.py -k
chromium``).
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import note_seq
import numpy as np
import pytest
from scipy.io import wavfile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))  # studio/ until the venv's editable install is refreshed
from _examples import write_example_set  # noqa: E402
from _models import tracking_store, train_argv  # noqa: E402

from studio.validation import Limits  # noqa: E402

PYTHON = sys.executable  # the interpreter running the tests, wherever its venv is
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
VARIANT = "attention_rnn"
PRIMER = "C4 E4 G4"  # 6 16th steps: C4 E4 G4 as eighth notes
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow store holding one registered tiny attention_rnn; sets MLFLOW_TRACKING_URI."""
    from modeling import train

    root = tmp_path_factory.mktemp("studio")
    write_example_set(root / "mel", name="mel")
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    with tracking_store(uri):
        assert train.main(train_argv(VARIANT, root / "mel", root / "run", 3)) == 0
        yield uri


@pytest.fixture(scope="module")
def client(store: str) -> Iterator:
    from fastapi.testclient import TestClient

    from studio.server import create_app

    app = create_app(Limits(max_upload_bytes=64 * 1024))
    with TestClient(app, base_url="http://localhost:8501") as c:  # a Host the Studio answers to
        yield c


def wait_job(client, job: dict, timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while job["status"] not in ("done", "error"):
        assert time.time() < deadline, f"job still {job['status']}"
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job['id']}").json()
    return job


def generate(client, **fields: str) -> dict:
    form = {
        "model": VARIANT,
        "version": "champion",
        "primer_type": "notes",
        "primer_text": PRIMER,
        "num_outputs": "2",
        "length": "4",
        "seed": "7",
        **fields,
    }
    r = client.post("/api/generate", data=form)
    assert r.status_code == 202, r.text
    return wait_job(client, r.json())


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save screenshots: ``$MOTIF_SCREENSHOTS`` or a temporary folder."""
    where = os.environ.get("MOTIF_SCREENSHOTS")
    folder = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


def midi_pitches(data: bytes) -> list[int]:
    return [n.pitch for n in note_seq.midi_to_note_sequence(data).notes]


# ============================================================================ API


def test_catalogue_shows_registry_models_with_metrics(client, store: str) -> None:
    from modeling import registry

    cat = client.get("/api/models").json()
    assert cat["error"] is None and cat["tracking_uri"] == store
    (model,) = cat["models"]
    assert (model["name"], model["family"]) == (VARIANT, "melody")
    (v,) = model["versions"]
    row = next(registry.list_models(VARIANT))
    assert v["version"] == row["version"] == 1
    assert set(v["aliases"]) == {"latest", "champion"}
    assert v["example_set"] == "mel" and v["data_version"] == row["data_version"] != ""
    assert v["metrics"]["eval_loss"] == pytest.approx(float(row["eval_loss"]))
    assert v["metrics"]["eval_perplexity"] == pytest.approx(np.exp(v["metrics"]["eval_loss"]))


def test_options_give_each_familys_request_fields(client) -> None:
    """The page shows controls by the request fields a family takes, never by its name: the
    chord primer where ``primer_pitches`` is taken, the chord-grid length where chords are."""
    from modeling.families import FAMILY_MODULES, load_family

    defaults = client.get("/api/options").json()["defaults"]
    assert set(defaults) == set(FAMILY_MODULES)
    for name, d in defaults.items():
        assert d["fields"] == sorted(load_family(name).REQUEST_FIELDS)
    assert {n for n, d in defaults.items() if "primer_pitches" in d["fields"]} == {
        "polyphony",
        "performance",
    }
    assert "backing_chords" in defaults["improv"]["fields"] and defaults["improv"]["length"] is None
    assert defaults["performance"]["unit"] == "seconds" and defaults["melody"]["unit"] == "bars"


def test_generate_two_melodies_with_files(client) -> None:
    job = generate(client)
    assert job["status"] == "done", job.get("error")
    assert job["steps"] == job["total_steps"] == 64 - 6  # 4 bars minus the primer's steps
    assert job["progress"] == 1.0
    batch = job["batch"]
    assert batch["model"] == "models:/attention_rnn/1" and batch["settings"]["seed"] == 7
    assert [s["filename"] for s in batch["samples"]] == [
        "attention_rnn_7_001",
        "attention_rnn_7_002",
    ]
    for s in batch["samples"]:
        midi = client.get(s["urls"]["midi"])
        assert midi.status_code == 200 and midi.headers["content-type"] == "audio/midi"
        assert (
            'attachment; filename="' + s["filename"] + '.mid"'
            == midi.headers["content-disposition"]
        )
        ns = note_seq.midi_to_note_sequence(midi.content)
        assert [n.pitch for n in ns.notes][:3] == [60, 64, 67]  # the primer comes back
        assert len(ns.notes) == s["num_notes"]
        assert client.get(s["urls"]["png"]).content.startswith(b"\x89PNG\r\n\x1a\n")
        rate, audio = wavfile.read(io.BytesIO(client.get(s["urls"]["wav"]).content))
        assert len(audio) / rate >= 8.0 - 1e-3  # 4 bars at 120 qpm, plus any release tail
        assert np.abs(audio).max() > 0
        record = client.get(s["urls"]["json"]).json()
        assert record["seed"] == 7 and record["num_notes"] == s["num_notes"]
        assert record["model"] == "models:/attention_rnn/1"
    # WAV byte ranges (the audio element seeks with them)
    wav_url = batch["samples"][0]["urls"]["wav"]
    part = client.get(wav_url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content[:4] == b"RIFF" and len(part.content) == 100


def test_seed_reproduces_bytes_and_regenerate(client) -> None:
    a, b = generate(client)["batch"], generate(client)["batch"]
    first = [client.get(s["urls"]["midi"]).content for s in a["samples"]]
    assert first == [client.get(s["urls"]["midi"]).content for s in b["samples"]]
    assert first[0] != first[1]

    # regenerate sample 2 only: new seed, sample 1 untouched, the old token is gone
    r = client.post(f"/api/batches/{b['id']}/samples/2/regenerate")
    assert r.status_code == 202
    job = wait_job(client, r.json())
    assert job["status"] == "done" and job["sample_index"] == 2
    s1, s2 = job["batch"]["samples"]
    assert s1["token"] == b["samples"][0]["token"]
    assert s2["token"] != b["samples"][1]["token"] and s2["row"] == 1
    assert client.get(b["samples"][1]["urls"]["midi"]).status_code == 404
    # the new sample is row 1 of its own seed: the same request with that seed reproduces it
    again = generate(client, seed=str(s2["seed"]), num_outputs="1")["batch"]["samples"][0]
    assert client.get(s2["urls"]["midi"]).content == client.get(again["urls"]["midi"]).content

    # regenerate the whole batch: a new batch, a new seed, the same settings otherwise
    job = wait_job(client, client.post(f"/api/batches/{b['id']}/regenerate").json())
    new = job["batch"]
    assert new["id"] != b["id"] and len(new["samples"]) == 2
    assert {k: v for k, v in new["settings"].items() if k != "seed"} == {
        k: v for k, v in b["settings"].items() if k != "seed"
    }
    assert client.post("/api/batches/nonexistent00/regenerate").status_code == 404
    assert client.post(f"/api/batches/{b['id']}/samples/3/regenerate").status_code == 404


def test_bad_requests_get_one_sentence_on_their_control(client) -> None:
    broken = b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\xff\xff\x90<"
    r = client.post(
        "/api/generate",
        data={"model": VARIANT, "primer_type": "midi"},
        files={"primer_midi": ("../../etc/passwd.mid", broken, "audio/midi")},
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "primer_midi"
    assert "damaged" in r.json()["error"]["message"]
    # over the cap: refused after reading the file (422) or, far over it, while the request
    # body streams in (413), before anything is parsed
    for size, status in ((70 * 1024, 422), (400 * 1024, 413)):
        r = client.post(
            "/api/generate",
            data={"model": VARIANT, "primer_type": "midi"},
            files={"primer_midi": ("big.mid", b"MThd" + bytes(size), "audio/midi")},
        )
        assert r.status_code == status
        err = r.json()["error"]
        assert err["field"] == "primer_midi" and "limit is 64 KB" in err["message"]
    r = client.post("/api/generate", data={"model": "not_registered"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "model"
    r = client.post("/api/generate", data={"model": VARIANT, "num_outputs": "50"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "num_outputs"
    # found by the generation plan, after the model is loaded: a primer below the model's range
    job = generate(client, primer_text="C1 D1")
    assert job["status"] == "error"
    message = job["error"]["message"]
    assert job["error"]["field"] == "primer_text" and "outside" in message
    assert "C1" in message and "C3 to B5" in message  # note names, not the event vocabulary
    assert "melody:" not in message and "event" not in message  # typed notes: no step number
    r = client.post("/api/generate", data={"model": VARIANT, "version": "9"})
    assert r.json()["error"]["message"].startswith(f"{VARIANT} has no version")
    job = generate(client, primer_type="events", primer_text=str([60] + [-2] * 70), length="4")
    assert job["status"] == "error" and job["error"]["field"] == "length"
    # the server is still fine after all of that
    assert generate(client, num_outputs="1")["status"] == "done"


def test_zip_sample_primer_and_bad_paths_get_the_apps_answers(client) -> None:
    batch = generate(client)["batch"]
    r = client.get(f"/api/batches/{batch['id']}/zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == 'attachment; filename="attention_rnn_7.zip"'
    names = sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist())
    assert names == sorted(
        f"attention_rnn_7_00{i}{ext}" for i in (1, 2) for ext in (".mid", ".png", ".wav", ".json")
    )
    # a sample as the next primer: the new piece starts with every note of the old one
    first = batch["samples"][0]
    old = note_seq.midi_to_note_sequence(client.get(first["urls"]["midi"]).content)
    job = generate(
        client, primer_type="sample", primer_sample=first["token"], length="8", num_outputs="1"
    )
    assert job["status"] == "done", job.get("error")
    assert job["batch"]["settings"]["primer_sample"] == "attention_rnn_7_001.mid"
    new = client.get(job["batch"]["samples"][0]["urls"]["midi"]).content
    old_notes = [(n.pitch, round(n.start_time, 2)) for n in old.notes]
    new_notes = [
        (n.pitch, round(n.start_time, 2)) for n in note_seq.midi_to_note_sequence(new).notes
    ]
    assert new_notes[: len(old_notes)] == old_notes and len(new_notes) > len(old_notes)
    r = client.post("/api/generate", data={"model": VARIANT, "primer_type": "sample"})
    assert r.status_code == 422 and "sample is gone" in r.json()["error"]["message"]
    # malformed paths: the app's own one-sentence error, not the framework's validation JSON
    for path in (
        f"/api/batches/{batch['id']}/samples/abc/regenerate",
        f"/api/batches/{batch['id']}/samples/-1/regenerate",
    ):
        r = client.post(path)
        assert r.status_code == 404 and set(r.json()) == {"error"}, r.text
        assert "numbered 1, 2" in r.json()["error"]["message"]
    assert client.get("/api/batches/nonexistent00/zip").status_code == 404


def test_only_whitelisted_files_are_served(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "motif Studio" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    for path in (
        "/static/server.py",
        "/static/..%2Fserver.py",
        "/static/%2e%2e/jobs.py",
        "/api/samples/..%2F..%2Fetc/midi",
        "/api/samples/abcdefgh12/exe",
        "/api/jobs/nope",
    ):
        assert client.get(path).status_code == 404, path


def test_cli_refuses_a_busy_port_in_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [PYTHON, "-m", "studio", "--port", str(port)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith(f"studio: cannot listen on 127.0.0.1:{port}")
    proc = subprocess.run(
        [PYTHON, "-m", "studio", "--port", "70000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "1..65535" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--allowed-host", "evil.example.com/x"], "", "expected a host name"),
        ([], "studio.lan, bad host", "MOTIF_STUDIO_ALLOWED_HOSTS: expected a host name"),
    ],
)
def test_cli_refuses_a_bad_allowed_host_in_one_line(args: list[str], env: str, message: str):
    proc = subprocess.run(
        [PYTHON, "-m", "studio", "--port", str(_free_port()), *args],
        cwd=REPO,
        env={**os.environ, "MOTIF_STUDIO_ALLOWED_HOSTS": env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


# ============================================================================ browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(store: str) -> Iterator[str]:
    """``python -m studio`` in a subprocess on a free port (the command ``make studio`` runs)."""
    import urllib.request

    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "OMP_NUM_THREADS": "1"}
    env["MOTIF_STUDIO_ALLOWED_HOSTS"] = " other.test , *.lan"
    proc = subprocess.Popen(
        [PYTHON, "-m", "studio", "--port", str(port), "--allowed-host", "studio.test"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "studio did not start within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_http_refuses_foreign_hosts_and_cross_origin_posts(server: str) -> None:
    """Over real HTTP to ``python -m studio``: DNS rebinding and cross-site form posts fail."""
    import httpx

    port = int(server.rsplit(":", 1)[1])
    form = {
        "model": VARIANT,
        "version": "champion",
        "primer_type": "notes",
        "primer_text": PRIMER,
        "num_outputs": "1",
        "length": "1",
        "seed": "5",
    }
    with httpx.Client(base_url=server, timeout=30) as http:
        # DNS rebinding: the attacker's name resolves to 127.0.0.1, the Host header keeps it
        for host in ("evil.example.com", f"evil.example.com:{port}", "127.0.0.1.evil.example"):
            r = http.get("/api/options", headers={"Host": host})
            assert r.status_code == 400, (host, r.status_code)
            assert "limits" not in r.text
        # loopback names, the names given by --allowed-host and $MOTIF_STUDIO_ALLOWED_HOSTS
        for host in (
            f"127.0.0.1:{port}",
            f"localhost:{port}",
            f"[::1]:{port}",
            "studio.test",
            "other.test",
            f"box.lan:{port}",
        ):
            r = http.get("/api/options", headers={"Host": host})
            assert r.status_code == 200 and "limits" in r.json(), host

        # a POST from another page: refused before the form is read, nothing queued
        for headers in (
            {"Origin": "http://evil.example.com"},
            {"Origin": "null"},  # a sandboxed iframe or a file:// page
            {"Origin": f"http://127.0.0.1:{port + 1}"},  # another local port is another origin
            {"Origin": f"https://127.0.0.1:{port}"},
            {"Referer": "http://evil.example.com/page.html"},  # no Origin: Referer decides
        ):
            r = http.post("/api/generate", data=form, headers=headers)
            assert r.status_code == 403, (headers, r.status_code, r.text)
            assert r.json()["error"]["field"] == "form" and "Cross-origin" in r.text
            r = http.post("/api/batches/nonexistent00/regenerate", headers=headers)
            assert r.status_code == 403, headers
        # reading is still fine from anywhere (the browser keeps the answer from other pages)
        assert http.get("/api/health", headers={"Origin": "http://evil.example.com"}).is_success

        # the page's own origin, under any allowed name, and a client without Origin (curl)
        for headers in (
            {"Origin": server},
            {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"},
            {"Origin": "http://studio.test", "Host": "studio.test:80"},
            {"Referer": f"{server}/"},
            {},
        ):
            r = http.post("/api/batches/nonexistent00/regenerate", headers=headers)
            assert r.status_code == 404 and "batch is gone" in r.text, (headers, r.text)
        r = http.post("/api/generate", data=form, headers={"Origin": server})
        assert r.status_code == 202, r.text
        job = r.json()
        deadline = time.time() + 60
        while job["status"] not in ("done", "error"):
            assert time.time() < deadline, "the job did not finish within 60 s"
            time.sleep(0.1)
            job = http.get(f"/api/jobs/{job['id']}").json()
        assert job["status"] == "done", job


@pytest.mark.browser
def test_page_in_headless_chromium(server: str, tmp_path: Path, shots: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page_errors: list[str] = []
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on(
                "console",
                lambda m: (
                    page_errors.append(m.text) if "Content Security Policy" in m.text else None
                ),
            )
            page.goto(server + "/")
            page.wait_for_selector("body[data-ready='1']")

            # it opens on the melody model, each version listed once with its aliases
            assert page.input_value("#model") == VARIANT
            versions = page.eval_on_selector_all("#version option", "os => os.map(o => o.text)")
            assert versions == ["v1 (champion, latest)"]
            assert page.input_value("#version") == "1"
            # plain words up front; the training facts one click away
            assert "sqlite" not in page.inner_text("header")
            info = page.inner_text("#model-info")
            assert "melodies" in info.lower() and "Quality:" in info and "C3 to B5" in info
            assert page.is_hidden("text=Data version")
            page.screenshot(path=str(shots / "studio-start.png"), full_page=False)
            page.click("#model-details summary")
            details = page.inner_text("#model-details")
            assert "Eval loss" in details and "mel" in details and "sqlite:" in details
            assert page.is_hidden("fieldset[data-family='performance']")
            box = page.locator("#generate").bounding_box()
            assert box is not None and box["y"] + box["height"] <= 900  # above the fold

            # generate two melodies
            page.select_option("#primer_type", "notes")
            page.fill("#primer_text", PRIMER)
            page.fill("#num_outputs", "2")
            page.fill("#length", "4")
            page.fill("#seed", "11")
            page.click("#generate")
            page.wait_for_function(
                "() => { const imgs = [...document.querySelectorAll('.sample img.roll')];"
                " return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                timeout=60_000,
            )

            # an audio element with a playable source: Chromium decodes its metadata
            page.wait_for_function(
                "() => { const a = [...document.querySelectorAll('.sample audio')];"
                " return a.length === 2 && a.every(x => x.readyState >= 1); }",
                timeout=30_000,
            )
            audio = page.evaluate(
                "() => [...document.querySelectorAll('.sample audio')].map(a => ({src: "
                "a.currentSrc, can: a.canPlayType('audio/wav'), duration: a.duration,"
                " error: a.error && a.error.code}))"
            )
            for a in audio:
                assert a["src"].startswith(server + "/api/samples/") and a["src"].endswith("/wav")
                assert a["can"] in ("maybe", "probably") and a["error"] is None
                assert a["duration"] >= 8.0 - 1e-3  # 4 bars at 120 qpm

            # the MIDI download parses and starts with the primer
            with page.expect_download() as info_dl:
                page.click(".sample[data-index='1'] a.midi")
            download = info_dl.value
            assert download.suggested_filename == "attention_rnn_11_001.mid"
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            ns = note_seq.midi_file_to_note_sequence(str(saved))
            assert [n.pitch for n in ns.notes][:3] == [60, 64, 67]
            meta = page.inner_text(".sample[data-index='1'] .meta")
            assert meta.startswith(f"{len(ns.notes)} notes") and "s long" in meta
            title = page.inner_text("#results-title")
            assert title == f"2 samples from {VARIANT} v1"
            head = page.locator("#results-head").bounding_box()
            regen = page.locator("#regenerate-all").bounding_box()
            assert head and regen and regen["height"] < 50  # the button never wraps
            assert page.get_attribute("#download-zip", "href").endswith("/zip")

            page.screenshot(path=str(shots / "studio.png"), full_page=True)

            # "Use as primer": the form switches to that sample, named in the primer box
            page.click(".sample[data-index='2'] button.use-primer")
            assert page.input_value("#primer_type") == "sample"
            assert "attention_rnn_11_002" in page.inner_text("#primer-sample-note")

            page.screenshot(path=str(shots / "studio-primer.png"), full_page=False)

            # a broken MIDI upload: refused with a message next to the upload, app keeps running
            page.select_option("#primer_type", "midi")
            page.set_input_files(
                "#primer_midi",
                files=[
                    {
                        "name": "broken.mid",
                        "mimeType": "audio/midi",
                        "buffer": b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\xff",
                    }
                ],
            )
            page.click("#generate")
            page.wait_for_function(
                "() => document.getElementById('err-primer_midi').textContent.length > 0"
            )
            message = page.inner_text("#err-primer_midi")
            assert "MIDI file is damaged" in message and message.count(".") >= 1
            assert page.inner_text("#err-form") == ""
            assert len(page.query_selector_all(".sample img.roll")) == 2  # results kept

            # ... and still generates: back to typed notes, one sample
            page.select_option("#primer_type", "notes")
            page.fill("#num_outputs", "1")
            page.click("#generate")
            page.wait_for_function(
                "() => document.querySelectorAll('.sample img.roll').length === 1", timeout=60_000
            )
            assert page.inner_text("#err-primer_midi") == ""

            # a generation longer than a second shows progress (64 bars: ~1000 steps + audio)
            token = page.get_attribute(".sample", "data-token")
            page.fill("#length", "64")
            page.click("#generate")
            page.wait_for_selector("#progress:not([hidden])", timeout=30_000)
            assert page.inner_text("#progress-text") != ""
            assert page.is_disabled("#generate")  # one request at a time from the page
            page.wait_for_function(
                f"() => {{ const s = document.querySelector('.sample');"
                f" return s && s.dataset.token !== '{token}'; }}",
                timeout=60_000,
            )
            assert page.is_hidden("#progress") and page.is_enabled("#generate")
            # a 64-bar roll keeps readable text: drawn at full size in a box that scrolls
            page.wait_for_function(
                "() => { const i = document.querySelector('.sample img.roll');"
                " return i && i.complete && i.naturalWidth > 0; }"
            )
            roll = page.evaluate(
                "() => { const i = document.querySelector('.sample img.roll');"
                " return {shown: i.clientWidth, natural: i.naturalWidth,"
                " box: i.parentElement.clientWidth, scroll: i.parentElement.scrollWidth}; }"
            )
            assert roll["shown"] == roll["natural"] > 3000 and roll["scroll"] > roll["box"]
            page.locator(".sample").scroll_into_view_if_needed()
            page.locator(".sample").screenshot(path=str(shots / "studio-64-bars.png"))
            assert page_errors == [], page_errors
        finally:
            browser.close()
