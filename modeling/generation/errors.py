"""Structured request errors: the field a problem is about and a message each front end words.

:class:`RequestError` is any request that cannot be served (one line, exit 2); the parsers of
:mod:`modeling.primers` raise it with CLI wording. :class:`GenerateError` adds the structure: the
request field it is about and a message whose flag mentions are ``{name}`` placeholders, spelled
``--name`` by the CLI and with form labels by the studio. Dependency-free, so family modules can
raise it without importing the request parsers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from modeling import first_line

LENGTH_FIELDS = ("num_steps", "num_bars", "num_seconds")
PRIMER_FIELDS = ("primer_melody", "primer_pitches", "primer_midi")


class RequestError(ValueError):
    """A generation request that cannot be served (one line, for exit 2)."""


FLAGS = frozenset(
    {
        *LENGTH_FIELDS,
        *PRIMER_FIELDS,
        "num_outputs",
        "condition_on_primer",
        "inject_primer_during_generation",
        "backing_chords",
        "steps_per_chord",
        "render_chords",
        "notes_per_second",
        "pitch_class_histogram",
        "controls",
        "temperature",
        "beam_size",
        "branch_factor",
        "steps_per_iteration",
        "threads",
        "key",
        "scale",
        "qpm",
        "seed",
        "model",
        "checkpoint",
        "config",
        "hparams",
        "output_dir",
        "overwrite",
        "audio",
    }
)
"""Names a message may mention as ``{name}``: request fields and the CLI's other flags."""

_GROUP = re.compile(r"\{[a-z_]+\}(?: / \{[a-z_]+\})*")


class GenerateError(RequestError):
    """A request problem: ``field`` (a request field or flag name; None: the whole request) and
    ``message``, whose ``{flag}`` placeholders each front end spells its own way.

    ``topic`` (the flag(s) the whole message is about, e.g. ``"primer_midi"``) is printed before
    it on the command line (``--primer_midi: no melody ...``) and left out by the studio, which
    shows the message next to the control instead.
    """

    def __init__(self, field: str | None, message: str, *, topic: str | None = None) -> None:
        self.field, self.message, self.topic = field, message, topic
        super().__init__(self.render(lambda name: f"--{name}", with_topic=True))

    def render(self, spell: Callable[[str], str], *, with_topic: bool = False) -> str:
        """The message with each ``{flag}`` spelled by ``spell``; flags joined by `` / `` that
        spell the same (the studio's one Length control) are named once."""

        def group(m: re.Match[str]) -> str:
            names = re.findall(r"\{([a-z_]+)\}", m.group(0))
            if not all(n in FLAGS for n in names):
                return m.group(0)
            words = list(dict.fromkeys(spell(n) for n in names))
            return " / ".join(words)

        text = _GROUP.sub(group, self.message)
        if with_topic and self.topic:
            text = "/".join(spell(t) for t in self.topic.split("/")) + ": " + text
        return text


def parser_error(exc: Exception, field: str | None) -> GenerateError:
    """A CLI-worded parser's error (:mod:`modeling.primers`, :mod:`modeling.scales`) as a
    :class:`GenerateError` about ``field``: its leading ``--flag: `` becomes the topic and other
    ``--flag`` mentions placeholders. Those parsers predate structured errors; this is the one
    place their wording is read, and a :class:`GenerateError` passes through unchanged."""
    if isinstance(exc, GenerateError):
        return exc
    text = first_line(exc)
    topic = None
    m = re.match(r"(--[a-z_]+(?:/--[a-z_]+)*): ", text)
    if m:
        topic, text = m.group(1).replace("--", ""), text[m.end() :]
    return GenerateError(field, re.sub(r"--([a-z_]+)\b", r"{\1}", text), topic=topic)
