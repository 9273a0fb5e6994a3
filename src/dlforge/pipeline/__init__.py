"""The pipeline: `run(config) -> RunResult` wires data, training, evaluation, registry and report."""

from dlforge.pipeline.run import RunResult, run

__all__ = ["RunResult", "run"]
