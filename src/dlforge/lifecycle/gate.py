"""The champion/challenger gate: score the candidate and the alias's current holder on the
same rows, in this process, and check every condition.

The champion is re-scored, never trusted from the metrics it was registered with (those were
measured on its own test split, perhaps of other data). With no champion, relative conditions
are reported as ``skipped``, never silently passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from dlforge.config.lifecycle_schema import Condition, parse_condition
from dlforge.errors import ConfigError
from dlforge.evaluate.inspect import latency_ms
from dlforge.evaluate.metrics import evaluate_scores, flat_metrics
from dlforge.registry.bundle import load_bundle
from dlforge.registry.predictor import Predictor

if TYPE_CHECKING:
    from dlforge.lifecycle.gate_set import GateSet
    from dlforge.registry import ModelVersion

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
LATENCY_SAMPLES = 30


@dataclass(frozen=True)
class Check:
    """One condition's outcome: the figures compared and `status` passed, failed or skipped."""

    condition: str
    metric: str
    candidate: float
    champion: float | None
    bound: float | None
    status: str


@dataclass(frozen=True)
class GateResult:
    """What the gate compared and decided.

    Attributes:
        candidate, champion: the versions compared (`champion` None when the alias is free).
        alias: the alias the gate guards.
        gate_set: where the rows came from; `samples` how many.
        checks: one per condition, in the order given.
    """

    candidate: ModelVersion
    champion: ModelVersion | None
    alias: str
    gate_set: str
    samples: int
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """No condition failed (skipped ones are reported, not counted as passed)."""
        return all(c.status != FAILED for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAILED]

    def to_dict(self) -> dict[str, Any]:
        """JSON for the audit event's details."""
        return {"candidate": self.candidate.version,
                "champion": self.champion.version if self.champion else None,
                "alias": self.alias, "gate_set": self.gate_set, "samples": self.samples,
                "passed": self.passed, "checks": [c.__dict__ for c in self.checks]}

    def summary(self) -> str:
        """One short line for the event's reason (the figures are in `to_dict`)."""
        if self.passed:
            skipped = [c.condition for c in self.checks if c.status == SKIPPED]
            return "gate passed" + (f" ({len(skipped)} skipped: {'; '.join(skipped)})" if skipped else "")
        return "gate failed: " + "; ".join(c.condition for c in self.failed)

    def failures(self) -> str:
        """The failed conditions with their figures, for a person."""
        return "; ".join(f"{c.metric} {c.candidate:.4g}, bound {c.bound:.4g} ({c.condition})"
                         for c in self.failed)


def predictor_of(version: ModelVersion) -> Predictor:
    """A predictor of `version`'s bundle, knowing which version it is."""
    return Predictor(load_bundle(version.bundle_path), version=version)


def score(predictor: Predictor, gate: GateSet) -> dict[str, float]:
    """The flat metrics (`flat_metrics`) of `predictor` on the gate set, plus its forward
    pass's latency (``latency_ms_p50``, ``latency_ms_p95``, one sample, this process).

    Raises:
        DataError: the gate set has classes the model does not predict (a subset of its
            classes is scored on the model's labels, e.g. an update's fresh data).
    """
    if tuple(predictor.class_names) != gate.class_names:
        ref = predictor.version.ref if predictor.version else "the model"
        gate = gate.on_classes(tuple(predictor.class_names), ref)
    result = evaluate_scores(predictor.task, gate.y, predictor.predict_scores(gate.x),
                             predictor.threshold)
    sample = predictor.bundle.preprocessor.transform(gate.x[:1])
    return flat_metrics(result) | latency_ms(predictor.bundle.model, torch.as_tensor(sample[0]),
                                             runs=LATENCY_SAMPLES)


def judge(conditions: list[str], candidate: dict[str, float],
          champion: dict[str, float] | None) -> tuple[Check, ...]:
    """Check each condition on the two models' metrics.

    Raises:
        ConfigError: a condition names a metric that was not measured (listing those that were).

    Example:
        >>> [c.status for c in judge(["accuracy >= 0.9", "accuracy >= champion"],
        ...                          {"accuracy": 0.95}, None)]
        ['passed', 'skipped']
    """
    parsed = [parse_condition(text) for text in conditions]
    unknown = sorted({c.metric for c in parsed} - set(candidate))
    if unknown:
        raise ConfigError(f"evaluate.gate.conditions: {', '.join(map(repr, unknown))} is not a "
                          f"metric of this model; measured: {', '.join(sorted(candidate))}")
    return tuple(_check(text, c, candidate, champion) for text, c in zip(conditions, parsed, strict=True))


def _check(text: str, c: Condition, candidate: dict[str, float],
           champion: dict[str, float] | None) -> Check:
    theirs = None if champion is None else champion.get(c.metric)
    holds = c.holds(candidate[c.metric], theirs)
    status = SKIPPED if holds is None else (PASSED if holds else FAILED)
    return Check(text, c.metric, candidate[c.metric], theirs, c.bound(theirs), status)
