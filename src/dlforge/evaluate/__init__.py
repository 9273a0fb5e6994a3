"""Evaluation: scores from a model, metrics, the decision threshold, a classical baseline and
a bias/variance diagnosis.

Import from the submodules (`dlforge.evaluate.metrics`, ...): serving needs only `predict`,
and should not pay for importing scikit-learn.
"""
