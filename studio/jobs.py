"""Generation jobs for the Studio: one worker thread, progress, rendered samples kept in memory.

A validated :class:`~studio.validation.StudioRequest` becomes a :class:`Job` run on a single
worker thread (generation is CPU-bound and ``modeling.generate`` already batches every output
into one tensor, so a second worker would only fight it for the two cores). The job

1. loads the pinned registry version through ``modeling.generation.loading.load_model`` (which refuses
   names not in the registry and loads with ``torch.load(weights_only=True)``); the last few
   models stay loaded;
2. builds the family's plan (``modeling.generation.engine.build_plan``), so errors such as a primer
   outside the model's range come back before sampling, tied to a form control, and the
   progress bar knows how many steps a fixed-length piece needs;
3. runs ``modeling.generation.engine.generate`` with an ``on_step`` callback that feeds the progress;
4. renders MIDI, piano roll, WAV and the JSON record (``sample_record``, the CLI's) with ``modeling.generation.outputs.write_outputs``
   into a private temporary directory and keeps the bytes in memory.

Samples are served by random tokens only; no name or path from the page ever reaches the
filesystem. A batch (or one of its samples) can be regenerated with a fresh seed; old batches
are dropped when the store exceeds its byte or batch budget.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import secrets
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeling import first_line, render
from modeling.generation.engine import build_plan, generate
from modeling.generation.loading import load_model
from modeling.generation.outputs import output_stem, sample_record, write_outputs
from modeling.generation.plan import Plan, Sample
from modeling.generation.request import parser_error
from modeling.primers import RequestError
from studio.validation import MAX_SEED, FieldError, StudioRequest, field_error

log = logging.getLogger("studio")

KINDS = {
    "midi": (".mid", "audio/midi"),
    "png": (".png", "image/png"),
    "wav": (".wav", "audio/wav"),
    "json": (".json", "application/json"),
}
"""What a sample token serves: kind -> (file extension, media type)."""


class Busy(RuntimeError):
    """Too many jobs waiting; the page asks the user to wait for the running one."""


class Cancelled(RuntimeError):
    """Raised from the progress callback when the server shuts down mid-generation."""


@dataclass
class SampleFiles:
    """One rendered sample: its bytes and what the page shows about it."""

    token: str
    index: int  # 1-based position in its batch
    seed: int  # the seed of the request that produced it
    row: int  # 1-based row within that request (seed, row) reproduces it with the CLI
    stem: str
    data: dict[str, bytes]
    info: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        urls = {k: f"/api/samples/{self.token}/{k}" for k in self.data}
        return {
            "token": self.token,
            "index": self.index,
            "seed": self.seed,
            "row": self.row,
            "filename": self.stem,
            "urls": urls,
            **self.info,
        }

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.data.values())


@dataclass
class Batch:
    """The samples of one request (regenerating one sample replaces it in place)."""

    id: str
    sreq: StudioRequest
    variant: str
    samples: list[SampleFiles]
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "variant": self.variant,
            "model": self.sreq.model.uri,
            "family": self.sreq.model.family,
            "settings": self.sreq.settings,
            "samples": [s.to_json() for s in self.samples],
        }

    @property
    def size(self) -> int:
        return sum(s.size for s in self.samples)


@dataclass
class Job:
    """One queued or running generation; the page polls :meth:`to_json`."""

    id: str
    kind: str  # "batch" | "sample" (regenerate one) | "rebatch" (regenerate all)
    sreq: StudioRequest
    batch_id: str | None = None
    sample_index: int | None = None
    status: str = "queued"  # queued, loading, generating, rendering, done, error
    steps: int = 0  # generation steps taken
    total_steps: int | None = None  # known for fixed-length families (melody, improv)
    rows_done: int = 0
    rows: int = 0
    error: FieldError | None = None
    result: str | None = None  # the batch id when done
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def progress(self) -> float | None:
        """Fraction done, or None while it cannot be known (variable-length families)."""
        if self.status in ("done", "rendering"):
            return 1.0
        if self.status == "generating":
            if self.total_steps:
                return min(1.0, self.steps / self.total_steps)
            return None
        return 0.0

    def to_json(self, store: Studio) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "steps": self.steps,
            "total_steps": self.total_steps,
            "rows_done": self.rows_done,
            "rows": self.rows,
            "progress": self.progress(),
            "elapsed": round((self.finished or time.time()) - (self.started or self.created), 3),
        }
        if self.error is not None:
            out["error"] = self.error.to_json()
        if self.status == "done" and self.result:
            batch = store.batch(self.result)
            out["batch"] = batch.to_json() if batch else None
            out["sample_index"] = self.sample_index
        return out


class Studio:
    """Model cache, job queue and sample store of one server process."""

    def __init__(
        self,
        *,
        max_models: int = 2,
        max_batches: int = 24,
        max_bytes: int = 512 << 20,
        max_pending: int = 4,
        max_jobs: int = 200,
    ) -> None:
        self.max_models, self.max_batches, self.max_bytes = max_models, max_batches, max_bytes
        self.max_pending, self.max_jobs = max_pending, max_jobs
        self._lock = threading.RLock()
        self._models: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._batches: OrderedDict[str, Batch] = OrderedDict()
        self._tokens: dict[str, tuple[str, int]] = {}  # token -> (batch id, sample position)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-generate")
        self._closing = threading.Event()

    def close(self) -> None:
        """Stop taking jobs; a running generation stops at its next step (the process exits
        promptly on Ctrl-C instead of waiting for a long piece to finish)."""
        self._closing.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ submitting

    def submit(self, sreq: StudioRequest) -> Job:
        """Queue a new batch."""
        return self._queue(Job(id=_token(), kind="batch", sreq=sreq))

    def regenerate_batch(self, batch_id: str) -> Job:
        """Queue the batch's request again with a fresh seed (a new batch replaces it)."""
        batch = self._need_batch(batch_id)
        sreq = _reseeded(batch.sreq, batch.sreq.request.num_outputs)
        return self._queue(Job(id=_token(), kind="rebatch", sreq=sreq, batch_id=batch_id))

    def regenerate_sample(self, batch_id: str, index: int) -> Job:
        """Queue one new sample (fresh seed) that replaces sample ``index`` (1-based)."""
        batch = self._need_batch(batch_id)
        if not 1 <= index <= len(batch.samples):
            raise KeyError(f"batch has no sample {index}")
        sreq = _reseeded(batch.sreq, 1)
        return self._queue(
            Job(id=_token(), kind="sample", sreq=sreq, batch_id=batch_id, sample_index=index)
        )

    def _queue(self, job: Job) -> Job:
        with self._lock:
            pending = sum(j.status not in ("done", "error") for j in self._jobs.values())
            if pending >= self.max_pending:
                raise Busy(
                    f"{pending} generations are already waiting; try again when one finishes"
                )
            self._jobs[job.id] = job
            while len(self._jobs) > self.max_jobs:
                oldest = next(iter(self._jobs.values()))
                if oldest.status not in ("done", "error"):
                    break
                self._jobs.popitem(last=False)
        job.rows = job.sreq.request.num_outputs
        self._pool.submit(self._run, job)
        return job

    # ------------------------------------------------------------------ lookups

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def batch(self, batch_id: str) -> Batch | None:
        with self._lock:
            return self._batches.get(batch_id)

    def _need_batch(self, batch_id: str) -> Batch:
        batch = self.batch(batch_id)
        if batch is None:
            raise KeyError("that batch is gone (the Studio keeps the most recent ones)")
        return batch

    def sample_file(self, token: str, kind: str) -> tuple[bytes, str, str] | None:
        """(bytes, media type, download name) of one rendered file, or None."""
        with self._lock:
            where = self._tokens.get(token)
            if where is None or kind not in KINDS:
                return None
            batch = self._batches[where[0]]
            sample = batch.samples[where[1]]
            data = sample.data.get(kind)
        if data is None:
            return None
        ext, media = KINDS[kind]
        return data, media, sample.stem + ext

    def batch_zip(self, batch_id: str) -> tuple[bytes, str] | None:
        """Every file of a batch's samples as one ZIP (bytes, download name), or None."""
        batch = self.batch(batch_id)
        if batch is None:
            return None
        with self._lock:
            files = [(s.stem + KINDS[k][0], d) for s in batch.samples for k, d in s.data.items()]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in files:
                zf.writestr(name, data)
        seed = batch.sreq.settings.get("seed", "")
        return buf.getvalue(), f"{batch.variant}_{seed}.zip"

    # ------------------------------------------------------------------ the worker

    def _model(self, job: Job) -> Any:
        choice = job.sreq.model
        key = (choice.name, choice.version)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model, _meta = load_model(choice.uri, None, None)
        with self._lock:
            self._models[key] = model
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
        return model

    def _run(self, job: Job) -> None:
        job.started = time.time()
        try:
            job.status = "loading"
            model = self._model(job)
            req = job.sreq.request
            plan = build_plan(model, req)
            if plan.fixed_length:
                job.total_steps = int(plan.target_units - len(plan.primer))

            def on_step(step: int, finished: int) -> None:
                job.steps, job.rows_done = step, finished
                if self._closing.is_set():
                    raise Cancelled("the Studio is shutting down")

            job.status = "generating"
            plan, samples, notes = generate(model, req, on_step=on_step)
            job.status = "rendering"
            files = _render(model, job.sreq, plan, samples, notes)
            self._store(job, model.variant, files)
            job.status = "done"
        except FieldError as exc:
            job.error, job.status = exc, "error"
        except Cancelled as exc:
            job.error, job.status = FieldError("form", str(exc)), "error"
        except RequestError as exc:  # GenerateError and registry problems: one line each
            error = parser_error(exc, None)
            job.error, job.status = field_error(error, job.sreq.primer_type), "error"
        except Exception as exc:  # a bug, not bad input: log it whole, show one sentence
            log.exception("generation job %s failed", job.id)
            first = first_line(exc, "")[:200]
            job.error = FieldError("form", f"Generation failed ({type(exc).__name__}: {first})")
            job.status = "error"
        finally:
            job.finished = time.time()

    def _store(self, job: Job, variant: str, files: list[SampleFiles]) -> None:
        with self._lock:
            if job.kind == "sample":
                batch = self._batches.get(job.batch_id or "")
                if batch is None:
                    raise FieldError("form", "That batch is gone; generate a new one")
                pos = int(job.sample_index or 1) - 1
                new = files[0]
                new.index = pos + 1
                self._tokens.pop(batch.samples[pos].token, None)
                batch.samples[pos] = new
                self._tokens[new.token] = (batch.id, pos)
                job.result = batch.id
            else:
                batch = Batch(id=_token(), sreq=job.sreq, variant=variant, samples=files)
                self._batches[batch.id] = batch
                for pos, s in enumerate(files):
                    self._tokens[s.token] = (batch.id, pos)
                job.result = batch.id
            self._evict()

    def _evict(self) -> None:
        """Drop the oldest batches beyond the batch count or byte budget (never the newest)."""
        while len(self._batches) > 1 and (
            len(self._batches) > self.max_batches
            or sum(b.size for b in self._batches.values()) > self.max_bytes
        ):
            _, old = self._batches.popitem(last=False)
            for s in old.samples:
                self._tokens.pop(s.token, None)


def _token() -> str:
    return secrets.token_urlsafe(12)


def _reseeded(sreq: StudioRequest, num_outputs: int) -> StudioRequest:
    seed = secrets.randbelow(MAX_SEED + 1)
    req = dataclasses.replace(sreq.request, num_outputs=num_outputs, seed=seed)
    settings = {**sreq.settings, "seed": seed, "num_outputs": num_outputs}
    return dataclasses.replace(sreq, request=req, settings=settings)


def _render(
    model: Any, sreq: StudioRequest, plan: Plan, samples: list[Sample], notes: list[Any]
) -> list[SampleFiles]:
    """MIDI, piano roll, WAV and JSON of every sample via ``write_outputs``, read into memory."""
    req = sreq.request
    stems = [output_stem(model.variant, req.seed, i + 1) for i in range(len(samples))]
    records = [
        sample_record(model, req, plan, s, ns, i + 1, model=sreq.model.uri, settings=sreq.settings)
        for i, (s, ns) in enumerate(zip(samples, notes, strict=True))
    ]
    with tempfile.TemporaryDirectory(prefix="motif-studio-") as tmp:
        out = Path(tmp) / "out"
        paths = write_outputs(
            out,
            stems,
            notes,
            records,
            primer_seconds=plan.primer_seconds,
            audio="wav",
            overwrite=True,
        )
        result = []
        for i, (stem, p, s, ns) in enumerate(zip(stems, paths, samples, notes, strict=True)):
            data = {
                "midi": Path(p["midi"]).read_bytes(),
                "png": Path(p["piano_roll"]).read_bytes(),
                "json": Path(p["json"]).read_bytes(),
            }
            if "audio" in p:
                data["wav"] = Path(p["audio"]).read_bytes()
            melody, chords = render.split_parts(ns)
            info = {
                "log_likelihood": round(float(s.log_likelihood), 4),
                "num_notes": len(melody),  # what the model played; backing chords apart
                "num_chord_notes": len(chords),
                "seconds": round(float(ns.total_time), 3),
                "num_events": len(s.events),
                "reached_length": s.reached_length,
                "audio_renderer": p.get("audio_renderer"),
                "primer_seconds": round(float(plan.primer_seconds), 3),
            }
            result.append(
                SampleFiles(
                    token=_token(),
                    index=i + 1,
                    seed=req.seed,
                    row=i + 1,
                    stem=stem,
                    data=data,
                    info=info,
                )
            )
    log.info("rendered %d samples of %s seed %d", len(result), model.variant, req.seed)
    return result
