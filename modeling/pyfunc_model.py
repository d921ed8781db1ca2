"""The code of every registered motif model (MLflow "models from code"): :class:`MotifGenerator`.

:func:`modeling.pyfunc.save` names this file as the model's ``python_model``; MLflow copies it
into the model directory and runs it when the model is loaded (and once when it is saved), and
the last line hands MLflow the model object. Nothing here imports the generator at module level:
:meth:`MotifGenerator.load_context` does, in the process that serves the model, so a training
that registers a version never loads ``modeling.generate``.

:meth:`MotifGenerator.predict` turns each request row into the flags of ``modeling.generate``
and runs them through :func:`modeling.generate.request_from_args` (the same parsing and one-line
validation) and :func:`modeling.generate.generate` (the same engine), so a row and the CLI with
the same values and seed give the same events; each output row is read from the CLI's own
per-sample record (:func:`modeling.generation.outputs.sample_record`).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc
import pandas as pd

from modeling.pyfunc import OUTPUT_COLUMNS, request_columns


def _flag_value(value: Any) -> str | None:
    """A request cell as the CLI flag's text; None for a missing cell (NaN / None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))  # 32.0 from a column with gaps is still --num_steps=32
    return str(value)


class MotifGenerator(mlflow.pyfunc.PythonModel):
    """The pyfunc face of one registered version: a DataFrame of requests in, samples out."""

    def load_context(self, context: Any) -> None:
        """Load the checkpoint with ``modeling.generate``'s loader (``weights_only=True``)."""
        from modeling import generate as G

        self.model, self.meta = G.load_model(None, context.artifacts["checkpoint"], None)
        self.columns = request_columns(self.model.variant)

    def _request(self, row: dict[str, Any], tmp: Path, index: int) -> Any:
        """One row -> :class:`modeling.generate.Request`, through the CLI's own parser."""
        from modeling import generate as G
        from modeling.cli import UsageError
        from modeling.primers import RequestError

        unknown = sorted(set(row) - set(self.columns))
        if unknown:
            raise RequestError(
                f"unknown column(s) {', '.join(unknown)} for {self.model.variant}; "
                f"valid: {', '.join(self.columns)}"
            )
        argv = ["--output_dir", str(tmp), "--num_outputs=1"]  # one sample unless asked (CLI: 10)
        for name, value in row.items():
            text = _flag_value(value)
            if text is None:
                continue
            if name == "primer_midi_base64":
                midi = tmp / f"primer-{index}.mid"
                try:
                    midi.write_bytes(base64.b64decode(text, validate=True))
                except ValueError:
                    raise RequestError("primer_midi_base64 is not base64") from None
                name, text = "primer_midi", str(midi)
            argv.append(f"--{name}={text}")
        parser = G.build_parser()
        parser.exit_on_error = False  # a bad cell's ArgumentError says which flag, in one line
        try:
            args = parser.parse_args(argv)
        except (argparse.ArgumentError, UsageError) as exc:
            raise RequestError(str(exc)) from None  # a bad cell is a RequestError, like the CLI's
        return G.request_from_args(args)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """One output row per sample of every request row (``request_index`` says which)."""
        from mlflow.exceptions import MlflowException
        from note_seq import sequence_proto_to_pretty_midi

        from modeling import generate as G
        from modeling.generation.outputs import sample_record
        from modeling.primers import RequestError

        frame = pd.DataFrame(model_input)
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, row in enumerate(frame.to_dict(orient="records")):
                try:
                    req = self._request(row, Path(tmp), i)
                    plan, samples, notes = G.generate(self.model, req)
                except RequestError as exc:
                    raise MlflowException.invalid_parameter_value(f"request {i}: {exc}") from None
                for j, (s, ns) in enumerate(zip(samples, notes, strict=True)):
                    record = sample_record(self.model, req, plan, s, ns, j + 1)  # the CLI's JSON
                    buf = io.BytesIO()
                    sequence_proto_to_pretty_midi(ns).write(buf)
                    rows.append(
                        {
                            **{k: record[k] for k in OUTPUT_COLUMNS if k in record},
                            "request_index": i,
                            "events": json.dumps(record["events"]),
                            "log_likelihood": float(record["log_likelihood"]),
                            "total_time": float(record["total_time"]),
                            "reached_length": bool(record["reached_length"]),
                            "midi_base64": base64.b64encode(buf.getvalue()).decode("ascii"),
                        }
                    )
        return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


mlflow.models.set_model(MotifGenerator())
