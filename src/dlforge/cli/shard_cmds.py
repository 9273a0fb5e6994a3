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
    out: Annotated[Path, typer.Option("--out", "-o", metavar="PATH",
                                      help="Directory to write (must not exist). " + NAMED_OUTPUT_HELP)],
    shard_size: Annotated[int, typer.Option("--shard-size", min=1, help="Samples per shard file.")] = 4096,
    set_: SetOpt = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """Load, select, split and curate CONFIG's data, then write every split as .npy shards of
    at most --shard-size samples and a manifest.json (counts, dtypes, shapes, sha256), for
    `data: {source: shards, path: OUT, streaming: true}`.

    Example: dlforge data shard examples/digits.yaml --out digits-shards --shard-size 256
    """
    from dlforge.config import load_config
    from dlforge.data.prepare import load_and_split
    from dlforge.data.shards import check_shardable, write_shards
    from dlforge.data.streamed import streams
    from dlforge.errors import ConfigError

    cfg = load_config(config, set_)
    if streams(cfg.data):
        raise ConfigError("data.streaming: this config streams its training split; write "
                          "shards from a config with data.streaming: false")
    check_absent(out, "--out")
    check_shardable(cfg.data)  # before anything is loaded or validated
    dataset, splits, report = load_and_split(cfg)
    for warning in report.warnings:  # e.g. unreadable images left out: the shards lack them
        output.err.print(f"warning: {warning}")
    with named_output("--out"):  # made by another process meanwhile: the shards kept beside it
        manifest = write_shards(splits, out, shard_size=shard_size, keep=True,
                                source={"data": cfg.data.model_dump(mode="json"),
                                        "fingerprint": dataset.provenance.fingerprint})
    if as_json:
        output.print_json(manifest)
        return
    counts = ", ".join(f"{name} {part['count']} ({len(part['shards'])} shards)"
                       for name, part in manifest["splits"].items())
    output.err.print(f"wrote {out}: {counts}; {manifest['decoded_bytes'] / 2**20:.2f} MiB decoded")
