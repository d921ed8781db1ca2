"""Beam's runner as motif configures it loses no element between steps.

Beam's gRPC data plane flushed each output stream from a timer thread that cleared the buffer
without stopping the writer, dropping elements written in between (it cost an OpenEWLD file in
CI). ``pipeline_options`` turns that timer off; this test makes the race likely (a tiny GIL switch
interval, a DoFn that writes for seconds across several timer periods) and counts every element.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.testing.util import BeamAssertException, assert_that

from pipelines.beam_io import pipeline_options

EMIT_SECONDS = 2.5  # the timer fired every second: a few chances to hit the race


class _EmitFor(beam.DoFn):
    """Emit numbered elements for a while, yielding the GIL often, then say how many."""

    def process(self, seed: int) -> Iterator[object]:
        start, count = time.monotonic(), 0
        while time.monotonic() - start < EMIT_SECONDS:
            time.sleep(2e-5)
            yield (seed, count)
            count += 1
        yield beam.pvalue.TaggedOutput("count", count)


def _none_lost(actual: list[list[int]]) -> None:
    """The emitted and the arrived count (in either order) agree; else say how many were lost."""
    ((first, second),) = actual
    if first != second:
        raise BeamAssertException(f"{abs(first - second)} of {max(first, second)} elements lost")


def test_multi_threading_runner_keeps_every_element() -> None:
    options = pipeline_options(
        [], {"direct_num_workers": 2, "direct_running_mode": "multi_threading"}
    )
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with beam.Pipeline(options=options) as p:
            out = (
                p | beam.Create([0, 1]) | beam.ParDo(_EmitFor()).with_outputs("count", main="items")
            )
            emitted = out.count | "Emitted" >> beam.CombineGlobally(sum)
            # Reshuffle sends every element through the runner's data plane on its own.
            arrived = out.items | beam.Reshuffle() | "Arrived" >> beam.combiners.Count.Globally()
            both = (emitted, arrived) | beam.Flatten() | beam.combiners.ToList()
            assert_that(both, _none_lost, label="NoneLost")
    finally:
        sys.setswitchinterval(interval)
