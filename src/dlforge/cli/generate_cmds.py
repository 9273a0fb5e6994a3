"""`dlforge generate`: images from a registered GAN as one PNG grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlforge.cli import output


def generate_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Registered GAN: NAME, NAME@VERSION or NAME@ALIAS.")],
    n: Annotated[int, typer.Option("-n", "--count", help="Images to generate.", min=1,
                                   max=1024)] = 64,
    out: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")] = Path("grid.png"),
    seed: Annotated[int, typer.Option(help="Seeds the latent batch: same seed, same images.",
                                      min=0)] = 0,
) -> None:
    """Generate images with a registered GAN (model.type: dcgan), 8 per row, into a PNG file.

    Example: dlforge generate digits-gan -n 64 -o grid.png
    """
    if out.suffix.lower() != ".png":
        raise typer.BadParameter(f"must be a .png file (got {str(out)!r})", param_hint="--output")
    output.check_file_target(out, "--output", "grid.png")
    from dlforge.pipeline.gan_run import generate_grid

    path = generate_grid(model, n, out, seed=seed, workspace=ctx.obj["workspace"],
                         url=ctx.obj["store_url"])
    output.out.print(f"wrote {n} images of {model} to {path}")
