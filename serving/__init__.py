"""Serving trained prefixes: one frozen backbone, many checkpoints, mixed batches (serving/predictor.py)."""

from serving.predictor import Predictor

__all__ = ["Predictor"]
