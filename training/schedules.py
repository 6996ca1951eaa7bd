"""Learning-rate schedules of the original, as schedulers (not a copied training loop)."""

from __future__ import annotations

from torch.optim.lr_scheduler import LambdaLR


def exponential_per_epoch(optimizer, steps_per_epoch: int, gamma: float = 0.95) -> LambdaLR:
    """lr · gamma^epoch, no warmup: the original ExponentialTrainer stepped ExponentialLR(0.95) once per epoch.

    HF steps the scheduler after every optimizer step, so the factor is computed from the completed-step count."""
    steps_per_epoch = max(1, steps_per_epoch)
    return LambdaLR(optimizer, lambda step: gamma ** (step // steps_per_epoch))
