"""Learning-rate schedules of the original, as schedulers (not a copied training loop), and how --lr_schedule and HF's
schedule flags are reconciled so that none is silently ignored."""

from __future__ import annotations

import logging

from torch.optim.lr_scheduler import LambdaLR

from training.flags import given

logger = logging.getLogger(__name__)


def exponential_per_epoch(optimizer, steps_per_epoch: int, gamma: float = 0.95) -> LambdaLR:
    """lr · gamma^epoch, no warmup: the original ExponentialTrainer stepped ExponentialLR(0.95) once per epoch.

    HF steps the scheduler after every optimizer step, so the factor is computed from the completed-step count."""
    steps_per_epoch = max(1, steps_per_epoch)
    return LambdaLR(optimizer, lambda step: gamma ** (step // steps_per_epoch))


# HF flags that shape the learning rate; the project's own schedules (--lr_schedule) replace them.
HF_SCHEDULE_FLAGS = ("lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps")


def resolve_lr_schedule(training_args, task, argv: list[str]) -> str | None:
    """Make --lr_schedule and HF's --lr_scheduler_type/--warmup_* agree, so no schedule flag is silently ignored;
    returns the one-line problem when they cannot both be obeyed.

    auto: the family's schedule (task.hints.schedule: HF linear decay with warm-up for SuperGLUE/GLUE, the original's
    x--lr_decay per epoch without warm-up for NER/SRL/QA); an explicit --lr_scheduler_type then rules instead
    (--lr_schedule becomes hf). linear: HF's linear decay (--lr_scheduler_type linear). exponential: no HF schedule
    flag applies. hf: --lr_scheduler_type as given."""
    explicit = [name for name in HF_SCHEDULE_FLAGS if given(argv, name)]
    scheduler = getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type)
    if training_args.lr_schedule == "auto" and given(argv, "lr_scheduler_type"):
        logger.info(
            "--lr_scheduler_type %s given: it sets the schedule (--lr_schedule hf).",
            scheduler,
        )
        training_args.lr_schedule = "hf"
    schedule = task.hints.schedule if training_args.lr_schedule == "auto" else training_args.lr_schedule
    if schedule == "exponential" and explicit:
        why = (
            "the family's default, --lr_schedule auto"
            if training_args.lr_schedule == "auto"
            else "--lr_schedule exponential"
        )
        return (
            f"{', '.join('--' + n for n in explicit)} would be ignored: the schedule is the original's x--lr_decay "
            f"per epoch without warm-up ({why}). Pass --lr_schedule hf (or linear) to use HF's schedule flags."
        )
    if (
        schedule == "linear"
        and given(argv, "lr_scheduler_type")
        and training_args.lr_scheduler_type != "linear"
    ):
        return (
            f"--lr_scheduler_type {scheduler} conflicts with --lr_schedule linear: pass "
            "--lr_schedule hf to use --lr_scheduler_type."
        )
    return None
