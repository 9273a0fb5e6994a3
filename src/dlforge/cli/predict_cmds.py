"""`dlforge predict`: stream inputs through a registered model in batches and write as it goes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dlforge.cli import output
from dlforge.cli.predict_io import Sink, columns_for, open_sink, output_format
from dlforge.errors import DataError

if TYPE_CHECKING:
    from dlforge.cli.predict_stream import InputStream


@dataclass(frozen=True)
class PredictStats:
    """What a streamed prediction did: inputs written, inputs skipped, wall time."""

    written: int
    skipped: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def predict_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Registered model: NAME, NAME@VERSION or NAME@ALIAS.")],
    inputs: Annotated[list[str] | None, typer.Argument(
        metavar="INPUT...",  # as the README and the "give at least one INPUT" error name it
        help="Image files, folders of images, CSV files (table rows or a text column), or .json/.jsonl "
        "files of rows, texts or image pixel arrays, read as the server reads a request's inputs.")] = None,
    text: Annotated[list[str], typer.Option("--text", "-t", help="A text to classify (repeatable).")] = [],  # noqa: B006
    output_path: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write predictions here: .csv, .json (an array) or .jsonl (one per line). "
        "Written to a temporary file and renamed at the end.")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", "-f", help="On stdout: csv, json, jsonl, or table (keeps every row until the end: "
        "for small inputs), the default. With --output the file's suffix decides; a --format "
        "that disagrees with it is an error.", show_default=False)] = None,
    top_k: Annotated[int, typer.Option(help="Classes to show per input (multiclass); a .json request "
        "body's own top_k wins for its inputs, as on the server.", min=1)] = 3,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", "-b", min=1, help="Inputs read, decoded and predicted at a time; "
        "memory holds one batch.")] = 256,
    skip_bad: Annotated[bool, typer.Option(
        "--skip-bad", help="Record an input that cannot be read or predicted (an image file, a CSV "
        "row with more fields than the header, a value the model cannot take) in an `error` "
        "column and go on, instead of stopping at it. A file that is not CSV or JSON at all "
        "still stops the command.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Predict with a registered model on raw inputs; the saved preprocessing is applied.

    Inputs are read and predicted --batch-size at a time, in bounded memory.
    Without --skip-bad, the first unreadable input stops the command with an error naming it.
    A file given with --output appears only once every input is done.

    Example: dlforge predict digits@staging scans/ -o predictions.csv -b 128
    """
    from dlforge.cli.predict_stream import NO_INPUT, open_inputs  # pandas: only when predicting
    from dlforge.cli.usage import UsageError
    from dlforge.registry import load

    if not inputs and not text:  # before the store is opened: nothing is created
        raise UsageError(NO_INPUT, ctx=ctx)
    fmt = output_format(output_path, fmt)
    predictor = load(model, workspace=ctx.obj["workspace"], url=ctx.obj["store_url"])
    predictor.check_predicts()  # a GAN: before any input is read or -o opened
    stream = open_inputs(predictor, inputs or [], text, batch_size=batch_size, skip_bad=skip_bad)
    columns = columns_for(predictor.task, with_error=skip_bad)
    # A bar on stderr only when it cannot tangle with rows printed on the same terminal.
    show_bar = not quiet and output.err.is_terminal and (output_path is not None or not output.out.is_terminal)
    with open_sink(output_path, fmt, columns) as sink:
        stats = stream_predictions(predictor, stream, sink, top_k=top_k, skip_bad=skip_bad,
                                   progress=show_bar)
    if not quiet:
        output.err.print(summary(stats, output_path, fmt))


def stream_predictions(predictor, stream: InputStream, sink: Sink, *, top_k: int | None,
                       skip_bad: bool = False, progress: bool = False) -> PredictStats:
    """Predict every batch of `stream` and hand its records to `sink`, one batch at a time.

    Args:
        predictor: a `dlforge.registry.Predictor`.
        stream: batches from `open_inputs`.
        sink: where records go (`open_sink`).
        top_k: classes per multiclass prediction (None: all).
        skip_bad: on a batch that fails with a DataError, predict its inputs one by one and
            record the failing ones as ``{"input", "error"}`` instead of raising.
        progress: show a rich progress bar on stderr.

    Raises:
        DataError: an input that cannot be read or predicted (without `skip_bad`).
    """
    start = time.perf_counter()
    written = skipped = 0
    with _progress_bar(progress, stream) as advance:
        for ids, batch in stream.batches:
            records = predict_batch(predictor, ids, batch, top_k=top_k, skip_bad=skip_bad)
            sink.write(records)
            written += sum("error" not in r for r in records)
            skipped += sum("error" in r for r in records)
            advance(len(ids))
    return PredictStats(written, skipped, time.perf_counter() - start)


def predict_batch(predictor, ids: list[str], batch: Any, *, top_k: int | None,
                  skip_bad: bool = False) -> list[dict[str, Any]]:
    """Records ``{"input": id, **prediction}`` for one batch (see `stream_predictions`); a
    `JsonBatch`'s refusals name the file and line of the input, and its body's top_k wins."""
    from dlforge.cli.predict_json import JsonBatch
    from dlforge.cli.predict_stream import BadRows

    if isinstance(batch, BadRows):  # CSV lines that could not be parsed (only with skip_bad)
        return [{"input": i, "error": e} for i, e in zip(ids, batch.errors, strict=True)]
    located = batch if isinstance(batch, JsonBatch) else None
    if located is not None:
        batch, top_k = located.inputs, located.top_k or top_k
    try:
        rows = predictor.predict(batch, top_k=top_k)
        return [{"input": i, **r} for i, r in zip(ids, rows, strict=True)]
    except DataError:
        if not skip_bad and located is None:
            raise
    # One bad input fails its whole batch: find it by predicting the inputs one at a time.
    records = []
    for n, (i, item) in enumerate(zip(ids, _items(batch), strict=True)):
        try:
            records.append({"input": i, **predictor.predict(item, top_k=top_k)[0]})
        except DataError as exc:
            message = "; ".join(str(exc).splitlines())
            if located is not None:
                message = located.refusal(n, message, skip_bad=skip_bad)
                if not skip_bad:
                    raise DataError(message) from None
            records.append({"input": i, "error": message})
    return records


def summary(stats: PredictStats, path: Path | None, fmt: str = "csv") -> str:
    """The closing line: ``wrote N predictions to PATH (X inputs/s)``, and the skipped count
    with where the errors are: the error column (csv, table) or field (json, jsonl)."""
    where = f"wrote {stats.written} predictions to {path}" if path else f"predicted {stats.written} inputs"
    line = f"{where} ({stats.rate:,.0f} inputs/s)"
    if stats.skipped:
        place = "field" if fmt in ("json", "jsonl") else "column"
        line += f"; skipped {stats.skipped} bad input(s), see the error {place}"
    return line


def _items(batch: Any) -> list[Any]:
    """The inputs of a batch as batches of one (a one-row frame keeps its columns and dtypes)."""
    import pandas as pd

    if isinstance(batch, pd.DataFrame):
        return [batch.iloc[[i]] for i in range(len(batch))]
    return [[item] for item in batch]


@contextmanager
def _progress_bar(enabled: bool, stream: InputStream) -> Iterator[Any]:
    """Yield `advance(n)`; a rich bar on stderr when enabled (an open count when total is None)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn(f"predicting {stream.unit}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=output.err, transient=True, redirect_stdout=False,
                  redirect_stderr=False) as bar:
        task = bar.add_task("predict", total=stream.total)
        yield lambda n: bar.advance(task, n)
