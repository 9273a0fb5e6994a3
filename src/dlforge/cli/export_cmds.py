"""`dlforge export` and `dlforge profile`: a registered model as ONNX/TorchScript, and its speed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from dlforge.cli import output

FORMATS = ("onnx", "torchscript")  # dlforge.export.FORMATS, kept here so --help needs no torch
QUANTIZATIONS = ("int8",)
ModelArg = Annotated[str, typer.Argument(help="Registered model: NAME, NAME@VERSION or NAME@ALIAS.")]


def export_command(
    ctx: typer.Context,
    model: ModelArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="onnx or torchscript.")] = "onnx",
    quantize: Annotated[str | None, typer.Option(
        help="int8: add a dynamically quantized copy and report its accuracy drop.")] = None,
    output_dir: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Directory to create. Default <workspace>/exports/NAME-vVERSION "
        "(NAME-vVERSION-torchscript for TorchScript).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing export.")] = False,
    atol: Annotated[float, typer.Option(
        help="Largest allowed difference from PyTorch's outputs on the test split.", min=0.0)] = 1e-4,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Export a registered model with its preprocessing, checked against PyTorch on its test split.

    Example: dlforge export digits@staging --format onnx --quantize int8
    """
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be {' or '.join(FORMATS)} (got {fmt!r})", param_hint="--format")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise typer.BadParameter(f"must be int8 (got {quantize!r})", param_hint="--quantize")
    from dlforge.export import export_model

    with _progress(quiet) as say:
        result = export_model(model, fmt=fmt, quantize=quantize, output=output_dir, force=force,
                              workspace=ctx.obj["workspace"], url=ctx.obj["store_url"], atol=atol,
                              progress=say)
    for warning in result.warnings:
        output.err.print(f"warning: {warning}")
    _print_export(result.path, result.manifest)


def profile_command(
    ctx: typer.Context,
    model: ModelArg,
    runs: Annotated[int, typer.Option(help="Timed passes per measurement.", min=1)] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print the measurements as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Parameters, FLOPs, size, latency (batch 1) and throughput (batch 64) of a registered model
    in PyTorch eager, ONNX Runtime and ONNX Runtime int8, side by side.

    Example: dlforge profile digits@staging
    """
    from dlforge.export import profile_model
    from dlforge.runtime import configure_process

    configure_process()  # one torch thread per physical core, as ONNX Runtime gets
    with _progress(quiet) as say:
        profile = profile_model(model, workspace=ctx.obj["workspace"], url=ctx.obj["store_url"],
                                runs=runs, progress=say)
    if as_json:
        output.print_json(profile.to_dict())
        return
    output.table(f"{profile.ref} ({profile.model_type})",
                 ["backend", "params", "FLOPs", "size MB", "p50 ms", "p95 ms", "samples/s @64"],
                 [(r.backend, r.params, r.flops, f"{r.size_mb:.3f}", f"{r.latency_ms_p50:.3f}",
                   f"{r.latency_ms_p95:.3f}", f"{r.samples_per_s:,.0f}") for r in profile.rows])
    for note in profile.notes:
        output.out.print(note)


def _print_export(path: Path, manifest: dict[str, Any]) -> None:
    source, parity = manifest["source"], manifest["parity"]
    opset = f", opset {manifest['opset']}" if manifest["opset"] else ""
    output.out.print(f"exported {source['model']}@{source['version']} ({manifest['model_type']}) "
                     f"as {manifest['format']}{opset} to {path}")
    output.out.print(f"max abs diff vs PyTorch: {parity['max_abs_diff']:.3g} on {parity['checked_on']}")
    int8 = manifest["int8"]
    if int8 is None:
        return
    output.out.print(f"{int8['summary']} ({int8['file']})")
    before, after = manifest["metrics"]["pytorch"], int8["metrics"]
    if before is not None and after is not None:
        output.table("test metrics before and after int8", ["metric", "float", "int8", "drop"],
                     [(name, before[name], after[name], int8["drop"][name]) for name in before])


@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on a terminal, plain lines on stderr otherwise, nothing with --quiet."""
    if quiet:
        yield lambda _note: None
    elif output.err.is_terminal:
        with output.err.status("starting") as status:
            yield lambda note: status.update(f"{note}...")
    else:
        yield lambda note: output.err.print(f"{note}...")
