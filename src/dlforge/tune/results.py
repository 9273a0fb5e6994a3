"""What a search found: one summary per trial and the best trial by the VALIDATION metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dlforge.config.schema import RunConfig
from dlforge.errors import DlforgeError

if TYPE_CHECKING:
    import optuna

# A FAIL trial without a reason was left RUNNING by a killed process and closed by --resume.
INTERRUPTED = "interrupted: its process stopped before the trial ended; not counted in the budget"


@dataclass(frozen=True)
class TrialSummary:
    """One trial: `state` is complete, pruned, failed or running; `reason` says why it was
    pruned or failed; `run_id` is its run in the registry."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run_id: str | None
    reason: str | None
    duration_s: float | None

    def row(self, keys: list[str]) -> list[Any]:
        """Table cells: number, state, value, duration, then each parameter in `keys` order."""
        return [self.number, self.state, self.value, self.duration_s,
                *(self.params.get(k) for k in keys), self.reason or ""]


@dataclass
class SearchOutcome:
    """What a search or a capacity-ladder climb found: its trials, the best one by the
    VALIDATION metric (None when no trial completed) and that trial's config.

    Attributes:
        strategy: `search` (an Optuna study) or `capacity_ladder`.
        trials: one summary per trial (a ladder's rungs are its trials, numbered from 0).
        study_name: the Optuna study (search only); `study` the study itself, for the plots.
        stop_reason: why the climb stopped (ladder only).
        rungs: per rung, its width factor, parameter count, value and generalization gap
            (ladder only).
    """

    strategy: str
    metric: str
    direction: str
    trials: list[TrialSummary]
    best: TrialSummary | None
    best_config: RunConfig | None
    seconds: float = 0.0
    study_name: str | None = None
    stop_reason: str | None = None
    rungs: list[dict[str, Any]] = field(default_factory=list)
    study: optuna.Study | None = field(default=None, repr=False)

    @property
    def is_ladder(self) -> bool:
        return self.strategy == "capacity_ladder"

    def require_best(self) -> RunConfig:
        """The best trial's config.

        Raises:
            DlforgeError: no trial completed; names the counts and the first reason (a
                ladder: why the climb stopped).
        """
        if self.best_config is not None:
            return self.best_config
        if self.is_ladder:
            raise DlforgeError(f"tune: no rung of the capacity ladder trained; {self.stop_reason}")
        c = self.counts
        reasons = [t.reason for t in self.trials if t.reason]
        raise DlforgeError(
            f"tune: no trial completed ({c['pruned']} pruned, {c['failed']} failed), so there "
            f"is no best config to train; first reason: {reasons[0] if reasons else 'none'}")

    @property
    def best_source(self) -> str:
        """`trial 3` or `rung 2`: the best trial, as notes name it."""
        return f"{'rung' if self.is_ladder else 'trial'} {self.best.number}"

    @property
    def best_run_id(self) -> str:
        """The best trial's run in the store."""
        return self.best.run_id

    @property
    def counts(self) -> dict[str, int]:
        """Trials per state: complete, pruned, failed, running."""
        out = {"complete": 0, "pruned": 0, "failed": 0, "running": 0}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows of the trial table (best first by the metric, then the others)."""
        keys = sorted({k for t in self.trials for k in t.params})
        columns = ["trial", "state", self.metric, "seconds", *keys, "reason"]
        return columns, [t.row(keys) for t in self.trials]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary for the run's record."""
        if self.is_ladder:
            return {"strategy": self.strategy, "metric": self.metric,
                    "stop_reason": self.stop_reason,
                    "best_rung": self.best.number if self.best else None, "rungs": self.rungs}
        return {"study": self.study_name, "metric": self.metric, "direction": self.direction,
                "counts": self.counts, "best_trial": self.best.number if self.best else None,
                "best_value": self.best.value if self.best else None,
                "best_params": self.best.params if self.best else None}


def summarize(trial: optuna.trial.FrozenTrial, params: dict[str, Any]) -> TrialSummary:
    """A TrialSummary of an Optuna trial whose params were decoded into config values."""
    state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
        trial.state.name, "running")
    reason = trial.user_attrs.get("reason")
    if state == "failed" and reason is None:
        reason = INTERRUPTED
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    value = trial.value if state == "complete" else trial.user_attrs.get("last_value")
    return TrialSummary(trial.number, state, value, params, trial.user_attrs.get("run_id"),
                        reason, round(duration, 3) if duration is not None else None)
