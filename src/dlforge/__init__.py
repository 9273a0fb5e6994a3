"""dlforge: a deep-learning platform on PyTorch with careful practice built in."""

__version__ = "0.1.0"
