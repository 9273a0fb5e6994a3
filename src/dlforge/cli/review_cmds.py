"""`dlforge data review`: rank the training samples most likely mislabelled or outlying."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from dlforge.atomic import check_absent
from dlforge.cli import output
from dlforge.cli.usage import NAMED_OUTPUT_HELP, named_output

SetOpt = Annotated[list[str], typer.Option("--set", "-s", help="Override a key: --set review.folds=3.")]


def review_command(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Run config (YAML): its data, model and review sections.")],
    set_: SetOpt = [],  # noqa: B006
    out: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Directory to write (must not exist). Default <workspace>/reviews/<name> "
                        "(-2, -3, ... if that exists once the review is written). " + NAMED_OUTPUT_HELP)] = None,
    drop_top: Annotated[int, typer.Option(
        "--drop-top", min=0, help="Write the N most suspicious ids to exclude.txt, for data.exclude_file.")] = 0,
    by: Annotated[str, typer.Option(help="Which ranking --drop-top and the printed table follow: cl or aum.")] = "cl",
    as_json: Annotated[bool, typer.Option("--json", help="Print the review as JSON.")] = False,
) -> None:
    """Train CONFIG's model on k folds of its training split (review.folds, review.epochs) and
    rank the training samples by confident learning and by area under the margin.

    Example: dlforge data review examples/digits.yaml --drop-top 20
    """
    from dlforge.config import load_config
    from dlforge.data.prepare import prepare_data
    from dlforge.errors import ConfigError
    from dlforge.review import review_data
    from dlforge.review.kfold import check_review_config
    from dlforge.review.output import SIGNAL_NAMES, exclusions, write_review
    from dlforge.runtime import setup_process
    from dlforge.workspace import resolve_workspace

    cfg = load_config(config, set_)
    check_review_config(cfg)  # before the data is read (and maybe downloaded)
    if by not in SIGNAL_NAMES:
        raise ConfigError(f"--by: one of {', '.join(SIGNAL_NAMES)} (got {by!r})")
    if out is not None:
        check_absent(out, "--output")
    # the default folder is numbered when the review is written, not now: two reviews started
    # together would both choose the same one and the second would lose its training at the end
    dest = out or resolve_workspace(ctx.obj["workspace"]) / "reviews" / cfg.name
    device = setup_process(cfg.train.num_threads, cfg.device)
    data = prepare_data(cfg)
    findings = review_data(cfg, data, device=device, progress=not as_json)
    images = data.splits.train.x if data.modality == "image" else None
    with named_output():  # --output made by another process meanwhile: kept beside it
        files = write_review(dest, findings, top=cfg.review.top, images=images,
                             exclude=exclusions(findings, by, drop_top) if drop_top else [],
                             numbered=out is None, keep=out is not None)
    if as_json:
        output.print_json(findings.to_dict(cfg.review.top) | {"files": [str(f) for f in files]})
        return
    _print(findings, SIGNAL_NAMES[by], cfg.review.top)
    output.err.print(f"wrote {', '.join(str(f) for f in files)}")
    if drop_top:
        hint = shlex.quote(f"data.exclude_file={files[0].parent.resolve() / 'exclude.txt'}")  # pasted into a shell
        output.err.print(f"next run without them: --set {hint}")


def _print(findings, signal: str, top: int) -> None:
    rows = findings.rows(signal, top)
    output.table(f"{signal}: {int(findings.signals[signal].flagged.sum())} of {len(findings.ids)} "
                 f"training samples flagged", ["id", "given", "suggested", "score", "issue"],
                 [[r["id"], r["given"], r["suggested"], r["score"], r["issue"]] for r in rows])
    for name, pr in (findings.against_flipped() if findings.flipped else {}).items():
        output.err.print(f"{name} against the {pr['true']} flipped labels: precision "
                         f"{pr['precision']}, recall {pr['recall']}")
