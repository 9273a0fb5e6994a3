"""Keeping models alive after registration: drift and training-serving skew."""
