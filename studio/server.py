"""The Studio's HTTP side: a FastAPI app serving one static page and a small JSON API.

Why a small server plus a plain page (not Streamlit): every action is an HTTP request with a
JSON answer, so validation, errors and files are unit-testable with Starlette's TestClient and the
page is testable in a real browser; the page loads three static files and never re-runs a script
per click, and a generation runs on a worker thread while the page polls its progress.

Routes (all JSON unless noted):

* ``GET /`` and ``GET /static/{app.js,style.css,icon.svg}``: the page (a fixed whitelist, read once).
* ``GET /api/options``: caps, scale names, defaults per family.
* ``GET /api/models``: the registry catalogue (:mod:`studio.catalog`).
* ``POST /api/generate``: the form (multipart, optional ``primer_midi`` upload) -> 202 + a job;
  422 ``{"error": {"field", "message"}}`` for bad input, 413 for an oversized upload.
* ``GET /api/jobs/{id}``: status, progress, the batch when done or the error with its field.
* ``POST /api/batches/{id}/regenerate`` and ``/api/batches/{id}/samples/{n}/regenerate``.
* ``GET /api/batches/{id}/zip``: every file of a batch's samples as one ZIP download.
* ``GET /api/samples/{token}/{midi|png|wav|json}``: rendered bytes from memory (ranges for WAV).

A form with ``primer_type=sample`` and ``primer_sample=<token>`` continues a sample the Studio
made: its MIDI is read from memory like an upload. Any malformed path or parameter gets the
app's own ``{"error": ...}`` answer, never the framework's default validation JSON.

The request body is counted while it is read and refused past the upload cap, so a huge upload
cannot fill memory or disk; the uploaded file's name is never used.

Two checks keep other web pages out of a Studio on localhost. The ``Host`` header must be a
loopback name (``localhost``, ``127.0.0.1``, ``[::1]``) or one the user allowed
(``--allowed-host``): a DNS-rebinding page reaches the socket under its own name, so that name is
refused (400). And a ``POST`` whose ``Origin`` (or, without one, ``Referer``) is not the Studio's
own ``scheme://host:port`` is refused (403), so no page can queue generations with a cross-site
form; requests without either header (curl, scripts) are not browser requests and pass.
"""

from __future__ import annotations

import contextlib
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from modeling.families import FAMILY_MODULES, load_family
from modeling.generation.request import DEFAULT_BACKING_CHORDS
from modeling.music import STEPS_PER_BAR
from modeling.scales import SCALE_NAMES
from studio.catalog import load_catalogue, resolve_choice
from studio.jobs import KINDS, Busy, Studio
from studio.validation import (
    HISTOGRAM_MODES,
    LABELS,
    PITCH_CLASS_NAMES,
    PRIMER_TYPES,
    FieldError,
    Limits,
    parse_form,
)

log = logging.getLogger("studio")
STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css", "icon.svg": "image/svg+xml"}
FORM_OVERHEAD = 256 << 10
"""Bytes allowed beyond the upload cap for the other form fields and multipart framing."""
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; media-src 'self'; "
    "style-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""Host names always accepted: the ones a browser on this machine uses for a loopback address."""
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _TooLarge(Exception):
    pass


def _error(status: int, field: str, message: str) -> JSONResponse:
    err = FieldError(field, message)
    return JSONResponse({"error": err.to_json()}, status_code=status)


def _limited(receive: Any, cap: int) -> Any:
    """An ASGI ``receive`` that raises once more than ``cap`` body bytes have arrived."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise _TooLarge
        return message

    return wrapped


def _origin_key(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL, default port filled in; None if unparsable."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


class SameOriginMiddleware:
    """Refuse state-changing requests that a browser sent from another origin (403).

    Browsers attach ``Origin`` to cross-origin (and same-origin) ``POST`` requests; some older
    browsers send only ``Referer``, so it stands in when ``Origin`` is absent. A request with
    neither is not a browser's and passes. The Studio's own origin is the request's scheme and
    ``Host`` header, which :class:`TrustedHostMiddleware` has already restricted to names this
    machine answers to.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        claimed = headers.get("origin")
        if claimed is None:
            claimed = headers.get("referer")
        if claimed is not None:
            own = _origin_key(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
            if own is None or _origin_key(claimed) != own:
                response = _error(
                    403, "form", "Cross-origin requests are refused; open the Studio's own page"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _options(limits: Limits) -> dict[str, Any]:
    return {
        "limits": limits.as_json(),
        "scales": list(SCALE_NAMES),
        "pitch_classes": list(PITCH_CLASS_NAMES),
        "primer_types": list(PRIMER_TYPES),
        "histogram_modes": list(HISTOGRAM_MODES),
        "labels": LABELS,
        "default_chords": DEFAULT_BACKING_CHORDS,
        "defaults": {name: _family_defaults(name) for name in FAMILY_MODULES},
    }


def _family_defaults(family: str) -> dict[str, Any]:
    """The Length control's default and unit for a family (None: the family derives it) and the
    request fields its models take, so the page shows controls by field, never by family name."""
    fam = load_family(family)
    units, fields = fam.GENERATION_UNITS, sorted(fam.REQUEST_FIELDS)
    steps = units.default_steps
    if units.metered:
        length = {"length": None if steps is None else steps / STEPS_PER_BAR, "unit": "bars"}
    else:
        length = {"length": None if steps is None else steps / units.per_second, "unit": "seconds"}
    return {**length, "fields": fields}


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=a-b`` range, None for the whole file."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:  # suffix range: the last n bytes
        start, end = max(0, size - int(m.group(2))), size - 1
    return (start, end) if start <= end < size else (size, size)


def create_app(
    limits: Limits | None = None,
    studio: Studio | None = None,
    allowed_hosts: Iterable[str] = (),
) -> FastAPI:
    """The Studio app; ``limits`` and ``studio`` are injectable for tests.

    ``allowed_hosts`` are ``Host`` names accepted besides :data:`LOOPBACK_HOSTS` (``*.lan`` style
    wildcards, or ``*`` for any, as Starlette's ``TrustedHostMiddleware`` reads them).
    """
    limits = limits or Limits()
    studio = studio or Studio()
    pages = {name: (STATIC / name).read_bytes() for name in ("index.html", *STATIC_FILES)}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        studio.close()

    app = FastAPI(
        title="motif Studio", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.studio, app.state.limits = studio, limits
    # added first, so they sit inside the security-headers middleware and their answers get them
    app.add_middleware(SameOriginMiddleware)
    app.add_middleware(
        TrustedHostMiddleware,
        allowed_hosts=[*LOOPBACK_HOSTS, *allowed_hosts],
        www_redirect=False,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, _exc: RequestValidationError) -> Response:
        return _error(404, "form", "No such page or item")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for k, v in _SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.get("/", response_class=HTMLResponse)
    def index() -> Response:
        return Response(
            pages["index.html"],
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return _error(404, "form", "No such file")
        return Response(
            pages[name], media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"}
        )

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/api/options")
    def options() -> dict[str, Any]:
        return _options(limits)

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        return load_catalogue()

    @app.post("/api/generate")
    async def generate(request: Request) -> Response:
        cap = limits.max_upload_bytes + FORM_OVERHEAD
        length = request.headers.get("content-length", "")
        too_big = f"The upload is too large; the limit is {limits.max_upload_bytes / 1024:.0f} KB"
        if length.isdigit() and int(length) > cap:
            return _error(413, "primer_midi", too_big)
        limited = Request(request.scope, _limited(request.receive, cap))
        try:
            form = await limited.form(max_files=1, max_fields=64, max_part_size=limits.max_text * 4)
        except _TooLarge:
            return _error(413, "primer_midi", too_big)
        except HTTPException as exc:
            return _error(400, "form", f"The form could not be read ({exc.detail})")
        try:
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            histogram = [v for v in form.getlist("histogram") if isinstance(v, str)]
            upload = form.get("primer_midi")
            data = None
            if (
                fields.get("primer_type") == "midi"
                and isinstance(upload, UploadFile)
                and (upload.filename or upload.size)
            ):
                data = await upload.read(limits.max_upload_bytes + 1)
            if fields.get("primer_type") == "sample":
                token = fields.get("primer_sample", "")
                found = studio.sample_file(token, "midi") if _ID.fullmatch(token) else None
                if found is not None:
                    data = found[0]
                    fields["primer_sample_name"] = found[2]
            catalogue = await run_in_threadpool(load_catalogue)
            choice = resolve_choice(catalogue, fields.get("model", ""), fields.get("version", ""))
            sreq = await run_in_threadpool(
                parse_form, fields, choice, histogram=histogram, upload=data, limits=limits
            )
        except FieldError as exc:
            return JSONResponse({"error": exc.to_json()}, status_code=422)
        finally:
            await form.close()
        try:
            job = studio.submit(sreq)
        except Busy as exc:
            return _error(429, "form", str(exc))
        return JSONResponse(job.to_json(studio), status_code=202)

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> Response:
        found = studio.job(job_id) if _ID.fullmatch(job_id) else None
        if found is None:
            return _error(404, "form", "No such job (the Studio may have restarted)")
        return JSONResponse(found.to_json(studio))

    def _regen(fn: Any, *args: Any) -> Response:
        try:
            new = fn(*args)
        except KeyError as exc:
            return _error(404, "form", str(exc.args[0]) if exc.args else "Not found")
        except Busy as exc:
            return _error(429, "form", str(exc))
        return JSONResponse(new.to_json(studio), status_code=202)

    @app.post("/api/batches/{batch_id}/regenerate")
    def regenerate_batch(batch_id: str) -> Response:
        if not _ID.fullmatch(batch_id):
            return _error(404, "form", "No such batch")
        return _regen(studio.regenerate_batch, batch_id)

    @app.post("/api/batches/{batch_id}/samples/{index}/regenerate")
    def regenerate_sample(batch_id: str, index: str) -> Response:
        if not _ID.fullmatch(batch_id):
            return _error(404, "form", "No such batch")
        if not re.fullmatch(r"\d{1,4}", index):
            return _error(
                404, "form", f"There is no sample {index[:20]!r}; samples are numbered 1, 2, ..."
            )
        return _regen(studio.regenerate_sample, batch_id, int(index))

    @app.get("/api/batches/{batch_id}/zip")
    def batch_zip(batch_id: str) -> Response:
        found = studio.batch_zip(batch_id) if _ID.fullmatch(batch_id) else None
        if found is None:
            return _error(404, "form", "That batch is gone (the Studio keeps the most recent ones)")
        data, filename = found
        return Response(
            data,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @app.get("/api/samples/{token}/{kind}")
    def sample(token: str, kind: str, request: Request) -> Response:
        found = studio.sample_file(token, kind) if _ID.fullmatch(token) and kind in KINDS else None
        if found is None:
            return _error(404, "form", "No such sample (old batches are dropped)")
        data, media, filename = found
        disposition = "attachment" if kind in ("midi", "json") else "inline"
        headers = {
            "Content-Disposition": f'{disposition}; filename="{filename}"',
            "Cache-Control": "private, max-age=3600",
            "Accept-Ranges": "bytes",
        }
        span = _byte_range(request.headers.get("range"), len(data))
        if span is None:
            return Response(data, media_type=media, headers=headers)
        start, end = span
        if start >= len(data):
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return Response(data[start : end + 1], status_code=206, media_type=media, headers=headers)

    return app
