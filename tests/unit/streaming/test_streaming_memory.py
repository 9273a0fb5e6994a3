"""Streaming keeps memory bounded: a pass over shards several times larger than a cap grows the
peak RSS of the training process (and of its reader processes) by less than the cap."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dlforge.data.dataset import Dataset, Provenance, Splits, TaskSpec
from dlforge.data.shards import write_shards

SAMPLES, SIDE = 24_000, 64          # 24,000 x 1 x 64 x 64 uint8: 94 MiB on disk, 375 MiB as float32
CAP_MB = 24                         # allowed growth of peak RSS over the pass (after the first batch)

PASS = """
import json, resource, sys
import numpy as np
from dlforge.config.schema import ImagePreprocess
from dlforge.data.preprocess.image import ImagePreprocessor
from dlforge.data.shards import ShardSet
from dlforge.data.streaming import StreamingLoader

def peak_mb(who):
    return resource.getrusage(who).ru_maxrss / 1024

split = ShardSet.open(sys.argv[1]).split("train")
pre = ImagePreprocessor(ImagePreprocess()).fit_chunks([split.take(np.arange(64))[0]])
loader = StreamingLoader(split, pre.transform, "multiclass", batch_size=256, shuffle=True,
                         workers=int(sys.argv[2]))
batches = iter(loader)
seen = len(next(batches)[1])
before = peak_mb(resource.RUSAGE_SELF)
seen += sum(len(yb) for _, yb in batches)
print(json.dumps({"samples": seen, "before": before, "after": peak_mb(resource.RUSAGE_SELF),
                  "readers": peak_mb(resource.RUSAGE_CHILDREN)}))
"""


@pytest.fixture(scope="module")
def big_shards(tmp_path_factory):
    """Shards written from a broadcast view: the writer holds one shard at a time too."""
    pixels = np.broadcast_to((np.arange(SAMPLES) % 251).astype(np.uint8)[:, None, None, None],
                             (SAMPLES, 1, SIDE, SIDE))
    task = TaskSpec("multiclass", ("a", "b"))

    def part(n):
        return Dataset(x=pixels[:n], y=np.arange(n, dtype=np.int64) % 2, task=task,
                       modality="image", provenance=Provenance("test"))
    out = tmp_path_factory.mktemp("big") / "shards"
    write_shards(Splits(part(SAMPLES), part(10), part(10)), out, shard_size=1024)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_peak_rss_grows_less_than_the_cap_over_a_set_several_times_larger(big_shards, workers):
    proc = subprocess.run([sys.executable, "-c", PASS, str(big_shards), str(workers)],
                          capture_output=True, text=True, timeout=300, check=True)
    got = json.loads(proc.stdout)
    assert got["samples"] == SAMPLES
    on_disk = SAMPLES * SIDE * SIDE / 2**20
    assert on_disk > 3.5 * CAP_MB and 4 * on_disk > 15 * CAP_MB  # raw 3.9x, float32 15.6x the cap
    assert got["after"] - got["before"] < CAP_MB, got
    if workers:  # a reader is a fork of the training process: its peak is that process's and a batch or two
        assert got["readers"] < got["before"] + CAP_MB, got
