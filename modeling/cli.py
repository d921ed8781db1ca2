"""The ``motif`` console command (declared in pyproject.toml as ``motif = "modeling.cli:main"``).

One front door for the parts a user runs by hand; each subcommand hands its remaining arguments,
unchanged, to the module that owns them, so ``motif generate --help`` is exactly
``python -m modeling.generate --help``:

    motif generate ...   -> modeling.generate  (sampling / beam search, MIDI + piano roll + audio)
    motif train ...      -> modeling.train     (one training loop for every variant)
    motif models ...     -> modeling.registry  (registered models, versions, aliases)
    motif corpora ...    -> pipelines.corpora  (download, verify and unpack the real corpora)

The target modules are imported only when their subcommand runs, so ``motif --help`` is instant.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("modeling.generate", "generate music from a registered model or a checkpoint"),
    "train": ("modeling.train", "train a variant on an example set (MLflow run + model)"),
    "models": ("modeling.registry", "list registered models, versions and aliases"),
    "corpora": (
        "pipelines.corpora",
        "fetch the real corpora (pinned, checksummed) into data/corpora",
    ),
}


def usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: motif <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "'motif <command> --help' explains each command's flags."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(
            f"motif: unknown command {command!r}; choose from {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    # note-seq imports pydub, which warns about ffmpeg at import; no motif command uses it.
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")
    module = importlib.import_module(COMMANDS[command][0])
    try:
        result = module.main(rest)
    except SystemExit as exc:  # argparse --help / usage errors inside the subcommand
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
