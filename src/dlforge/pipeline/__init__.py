"""The pipeline: `run(config) -> RunResult` wires data, training, evaluation, registry and report."""

from dlforge.pipeline.runner import RunResult, run

__all__ = ["RunResult", "run"]
