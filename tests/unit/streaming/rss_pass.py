"""One streamed training pass in a fresh process, measuring its peak RSS before and after."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

PASS = """
import json, resource, sys
from dlforge.config import load_config
from dlforge.data.prepare import prepare_data

def peak_mb(who):
    return resource.getrusage(who).ru_maxrss / 1024

cfg = load_config(json.loads(sys.argv[1]))
data = prepare_data(cfg)
batches = iter(data.loaders_for(cfg).train)
seen = len(next(batches)[1])
before = peak_mb(resource.RUSAGE_SELF)
seen += sum(len(yb) for _, yb in batches)
print(json.dumps({"samples": seen, "train": len(data.stream), "before": before,
                  "after": peak_mb(resource.RUSAGE_SELF), "readers": peak_mb(resource.RUSAGE_CHILDREN)}))
"""


def streamed_pass(config: dict[str, Any]) -> dict[str, float]:
    """`{"samples", "train", "before", "after", "readers"}` (MiB) of one epoch's batches of
    the streamed `config`: peak RSS after the first batch, after the pass, and of the readers."""
    proc = subprocess.run([sys.executable, "-c", PASS, json.dumps(config)],
                          capture_output=True, text=True, timeout=600, check=True)
    return json.loads(proc.stdout)
