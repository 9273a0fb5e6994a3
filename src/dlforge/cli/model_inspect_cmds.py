"""`dlforge inspect MODEL INPUT`: look inside a registered model on one input."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlforge.cli import output
from dlforge.cli.usage import NAMED_OUTPUT_HELP, named_output


def inspect_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Registered model: NAME, NAME@VERSION or NAME@ALIAS.")],
    input_file: Annotated[Path, typer.Argument(
        metavar="INPUT", help="An image file, a CSV (first row) or a text file, as the model takes.")],
    out: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Directory to write (must not exist). Default <workspace>/inspections/<model>-<input> "
                        "(-2, -3, ... if that exists once the files are written). " + NAMED_OUTPUT_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction and statistics as JSON.")] = False,
) -> None:
    """Write the feature maps of each conv block, a saliency map (input gradients) and the
    first layer's weights for INPUT; print per-layer weight and activation statistics.

    Example: dlforge inspect digits@staging three.png -o three
    """
    from dlforge.pipeline.inspect_registered import inspect_registered
    from dlforge.workspace import resolve_workspace

    workspace = ctx.obj["workspace"]
    dest = out or resolve_workspace(workspace) / "inspections" / f"{model.replace('@', '-')}-{input_file.stem}"
    with named_output():  # --output made by another process meanwhile: kept beside it
        result = inspect_registered(model, input_file, dest=dest, numbered=out is None,
                                    workspace=workspace, url=ctx.obj["store_url"])
    if as_json:
        output.print_json(result)
        return
    from dlforge.cli.predict_io import flatten

    predicted = ", ".join(f"{key} {output.fmt(value)}" for key, value in flatten(result["prediction"]).items())
    columns = ["layer", "kind", "weight_mean", "weight_std", "output_mean", "output_std", "dead_relu"]
    output.table(f"{model} on {input_file.name}: {predicted}", columns,
                 [[row.get(c, "") for c in columns] for row in result["statistics"]])
    for note in result["notes"]:
        output.err.print(note)
    output.err.print(f"wrote {len(result['files'])} files to {Path(result['files'][0]).parent}")
