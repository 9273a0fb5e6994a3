"""`dlforge data shard`: write a config's split data as sharded array files for streaming."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlforge.atomic import check_absent
from dlforge.cli import output
from dlforge.cli.usage import NAMED_OUTPUT_HELP, named_output

SetOpt = Annotated[list[str], typer.Option("--set", "-s", help="Override a key: --set data.limit=500.")]


def shard_command(
    config: Annotated[Path, typer.Argument(help="Run config (YAML) whose data section to write.")],
    out_dir: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="PATH", show_default=False,
        help="Directory to write (must not exist; required). " + NAMED_OUTPUT_HELP)] = None,
    old_out: Annotated[Path | None, typer.Option(
        "--out", hidden=True, help="The old name of --output (kept working).")] = None,
    shard_size: Annotated[int, typer.Option("--shard-size", min=1, help="Samples per shard file.")] = 4096,
    set_: SetOpt = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Load, select, split and curate CONFIG's data, then write every split as .npy shards of
    at most --shard-size samples and a manifest.json (counts, dtypes, shapes, sha256), for
    `data: {source: shards, path: OUTPUT, streaming: true}`.

    Example: dlforge data shard examples/digits.yaml --output digits-shards --shard-size 256
    """
    from dlforge.config import load_config
    from dlforge.data.prepare import load_and_split
    from dlforge.data.shards import check_shardable, write_shards
    from dlforge.data.streamed import streams
    from dlforge.errors import ConfigError

    out = _output(out_dir, old_out)
    cfg = load_config(config, set_)
    if streams(cfg.data):
        raise ConfigError("data.streaming: this config streams its training split; write "
                          "shards from a config with data.streaming: false")
    check_absent(out, "--output")
    check_shardable(cfg.data)  # before anything is loaded or validated
    dataset, splits, report = load_and_split(cfg)
    for warning in report.warnings:  # e.g. unreadable images left out: the shards lack them
        output.err.print(f"warning: {warning}")
    with named_output("--output"):  # made by another process meanwhile: the shards kept beside it
        manifest = write_shards(splits, out, shard_size=shard_size, keep=True,
                                source={"data": cfg.data.model_dump(mode="json"),
                                        "fingerprint": dataset.provenance.fingerprint})
    if as_json:
        output.print_json(manifest)
        return
    counts = ", ".join(f"{name} {part['count']} ({len(part['shards'])} shards)"
                       for name, part in manifest["splits"].items())
    output.err.print(f"wrote {out}: {counts}; {manifest['decoded_bytes'] / 2**20:.2f} MiB decoded")


def _output(out_dir: Path | None, old_out: Path | None) -> Path:
    """--output, or --out, the hidden name it had before (every other command says --output).

    Raises:
        UsageError: neither given (click's "Missing option"), or both.
    """
    from dlforge.cli.usage import MissingParameter

    if out_dir is not None and old_out is not None:
        raise typer.BadParameter("give it once (--out is its old name)", param_hint="--output")
    if out_dir is None and old_out is None:
        raise MissingParameter(param_hint="'--output' / '-o'", param_type="option")
    return out_dir if out_dir is not None else old_out
