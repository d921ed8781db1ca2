"""``python -m studio [--port 8501] [--host 127.0.0.1]``: serve the Studio (``make studio``).

Binds to localhost unless told otherwise; the MLflow store comes from ``$MLFLOW_TRACKING_URI``
(default ``sqlite:///mlruns/mlflow.db`` under the working directory, as training writes it).
The page answers only to loopback host names, the ``--host`` address and the names given with
``--allowed-host`` or ``$MOTIF_STUDIO_ALLOWED_HOSTS`` (comma-separated): see
:mod:`studio.server` for why (DNS rebinding).
Usage problems (a port in use, a bad cap) are one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
import socket
import sys
import warnings
from collections.abc import Callable

from studio import DEFAULT_HOST, DEFAULT_PORT

ALLOWED_HOSTS_ENV = "MOTIF_STUDIO_ALLOWED_HOSTS"
_HOST_NAME = re.compile(
    r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {value}")
    return value


def _bounded(hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not 1 <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be 1..{hi}, got {value}")
        return value

    return parse


def _allowed_host(text: str) -> str:
    """A ``Host`` name to accept: ``studio.lan``, ``*.lan``, an IP address, or ``*`` for any."""
    name = text.strip().lower()
    if name == "*" or _HOST_NAME.fullmatch(name):
        return name
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a host name such as studio.lan or *.lan, or an IP address, got {text!r}"
        ) from None
    return f"[{address}]" if address.version == 6 else str(address)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m studio",
        description="motif Studio: generate, see, hear and download music from the registered "
        "models in a web page.",
    )
    p.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port to listen on, e.g. 8502 (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}: this machine only)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        type=_allowed_host,
        default=[],
        metavar="NAME",
        help="also answer to this Host name, e.g. studio.lan or *.lan (repeatable; also "
        f"${ALLOWED_HOSTS_ENV}, comma-separated); loopback names always work",
    )
    p.add_argument(
        "--max-upload-kb",
        type=_bounded(64 * 1024),
        default=1024,
        help="largest MIDI primer accepted, in KB (default 1024)",
    )
    p.add_argument(
        "--max-outputs",
        type=_bounded(64),
        default=8,
        help="most samples per request, up to 64 (default 8)",
    )
    p.add_argument(
        "--log-level",
        default="warning",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log level (default warning)",
    )
    return p


def _check_bind(host: str, port: int) -> str | None:
    """One-line reason the address cannot be bound, or None (checked before heavy imports)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve --host {host!r} ({exc.strerror})"
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as exc:
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind: str, given: list[str], env: str) -> list[str]:
    """Host names the app accepts beyond loopback: the bind address, ``given``, then ``env``'s."""
    names = [_allowed_host(part) for part in env.split(",") if part.strip()]
    try:
        address = ipaddress.ip_address(bind.strip("[]"))
    except ValueError:
        return [bind.lower(), *given, *names]  # a host name to bind is also a name to answer to
    if address.is_unspecified:  # 0.0.0.0 / :: : every interface; names come from the list
        return [*given, *names]
    return [f"[{address}]" if address.version == 6 else str(address), *given, *names]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        hosts = allowed_hosts(args.host, args.allowed_host, os.environ.get(ALLOWED_HOSTS_ENV, ""))
    except argparse.ArgumentTypeError as exc:
        print(f"studio: ${ALLOWED_HOSTS_ENV}: {exc}", file=sys.stderr)
        return 2
    problem = _check_bind(args.host, args.port)
    if problem:
        print(f"studio: {problem}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")
    import uvicorn

    from modeling.registry import tracking_uri
    from studio.server import LOOPBACK_HOSTS, create_app
    from studio.validation import Limits

    limits = Limits(max_upload_bytes=args.max_upload_kb * 1024, max_outputs=args.max_outputs)
    app = create_app(limits, allowed_hosts=hosts)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"studio: serving http://{shown}:{args.port}/ (MLflow: {tracking_uri()}); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    if not _is_loopback(args.host):
        print(
            f"studio: warning: {args.host} is not a loopback address; anyone who can reach "
            "it can use the Studio",
            file=sys.stderr,
        )
        print(
            f"studio: the page answers to these host names: {', '.join([*LOOPBACK_HOSTS, *hosts])}"
            " (add others with --allowed-host)",
            file=sys.stderr,
        )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=args.log_level in ("info", "debug"),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
