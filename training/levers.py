"""Training levers as flags whose defaults change nothing: two head levers from the transfer-learning literature,
and the padding buckets of compiled runs:

- --head_learning_rate: the head in its own optimizer param groups (a new head next to a trained or small prefix
  often wants a larger step); the learning-rate schedule scales every group alike.
- --head_warmup_epochs N: only the head trains for the first N epochs, then everything the method trains, as
  LP-FT (Kumar et al., 2022: linear probing, then fine-tuning) keeps a random head from distorting the features
  (here: a transferred prefix, BitFit's biases or a fine-tuned backbone).
- --pad_to_multiple_of N: dynamic padding (--pad_to_max_length False) rounds each batch's length up to a multiple
  of N, so a --torch_compile run sees a few shapes (buckets) instead of one per batch length. The masks hide the
  extra padding: a model predicts the same. It is still a result-changing flag: dropout masks are drawn for
  (B, T, H) tensors, so a longer T draws others and trains another run; and QA's span softmax covers the padded
  positions (as HF's and the original's heads), so its loss changes with T. Unset under --torch_compile:
  COMPILE_PAD_MULTIPLE.

TrainingLevers is a mixin of run.py's training arguments (arguments.py PTuningTrainingArguments); the trainer
(training/trainer.py) applies them through public surfaces: create_optimizer, and the HeadWarmup callback; the collators
(training/data.py build_collator) apply --pad_to_multiple_of.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

COMPILE_PAD_MULTIPLE = 32  # --torch_compile's bucket width: max_seq_length 128 -> at most 4 lengths per split


@dataclass
class TrainingLevers:
    """Mixed into TrainingArguments (before it in the bases): its __post_init__ checks, then calls TrainingArguments'."""

    head_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the head (the classifier; DeBERTa's pooler) in its own optimizer param groups; "
            "the schedule scales it as it scales --learning_rate. Default: --learning_rate (one rate, as before)."
        },
    )
    head_warmup_epochs: int = field(
        default=0,
        metadata={
            "help": "Train only the head for the first N epochs (the prefix/prompt, BitFit's biases or the "
            "fine-tuned backbone frozen), then everything (LP-FT). Resumes exactly. Default 0: all from the start."
        },
    )
    pad_to_multiple_of: int | None = field(
        default=None,
        metadata={
            "help": "Dynamic padding (--pad_to_max_length False): pad each batch to a multiple of N tokens (shape "
            "buckets for --torch_compile; the same predictions, other dropout masks). Default: the batch's longest "
            f"row (8 under --fp16/--bf16), or {COMPILE_PAD_MULTIPLE} under --torch_compile."
        },
    )

    def __post_init__(self):
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise ValueError(f"--pad_to_multiple_of must be >= 1, got {self.pad_to_multiple_of}.")
        lr = self.head_learning_rate
        if lr is not None and not 0.0 < lr < math.inf:  # `not 0 < x` also refuses NaN
            raise ValueError(f"--head_learning_rate must be a positive number, got {lr}.")
        if self.head_warmup_epochs < 0:
            raise ValueError(f"--head_warmup_epochs must be >= 0, got {self.head_warmup_epochs}.")
        if (
            self.head_warmup_epochs
            and self.max_steps <= 0
            and self.head_warmup_epochs >= self.num_train_epochs
        ):
            raise ValueError(
                f"--head_warmup_epochs {self.head_warmup_epochs} leaves none of the --num_train_epochs "
                f"{self.num_train_epochs:g} for the rest of the model: lower it or train longer."
            )
        if self.deepspeed and (lr is not None or self.head_warmup_epochs):
            raise ValueError("--head_learning_rate and --head_warmup_epochs do not apply under --deepspeed.")
        super().__post_init__()  # HF's: --torch_compile_backend/_mode turn --torch_compile on
        if self.torch_compile and self.pad_to_multiple_of is None:
            self.pad_to_multiple_of = COMPILE_PAD_MULTIPLE
            logger.warning(
                "--torch_compile: dynamic padding pads each batch to a multiple of %d tokens (--pad_to_multiple_of), "
                "so the compiled model sees a few shapes.",
                COMPILE_PAD_MULTIPLE,
            )


def split_head_groups(optimizer, head_params, lr: float) -> None:
    """Move `head_params` out of each of the optimizer's param groups (HF's: with and without weight decay) into a
    group of their own with the same settings but learning rate `lr`, after the others; empty groups are dropped.
    Before any step (no optimizer state yet)."""
    head = {id(p) for p in head_params}
    groups = list(optimizer.param_groups)
    found = sum(id(p) in head for group in groups for p in group["params"])
    if found != len(head):  # e.g. an optimizer built over a wrapped model's own parameter objects
        raise ValueError(
            f"--head_learning_rate: {found} of the head's {len(head)} parameters are in the optimizer."
        )
    optimizer.param_groups.clear()
    for is_head in (False, True):
        for group in groups:
            params = [p for p in group["params"] if (id(p) in head) == is_head]
            if params:
                optimizer.add_param_group({**group, "params": params, **({"lr": lr} if is_head else {})})


def head_only_at(state, warmup_epochs: int) -> bool:
    """Whether the epoch that starts at `state` (a TrainerState: epoch = epochs done, restored on resume) is a
    head-only one."""
    return math.floor(state.epoch or 0) < warmup_epochs


class HeadWarmup(TrainerCallback):
    """--head_warmup_epochs: at the start of each epoch, only the head's parameters require grad while the epoch
    index is below N. A frozen parameter gets no gradient, so AdamW leaves it bit-unchanged (no decay, no moments:
    its optimizer state starts when it first trains) and the backward pass stops at the head. The epoch index comes
    from the TrainerState, which a resume restores, so a resumed run freezes exactly as an uninterrupted one."""

    def __init__(self, warmup_epochs: int):
        self.warmup_epochs = warmup_epochs

    def on_epoch_begin(self, args, state, control, model=None, **kwargs):
        model.train_head_only(head_only_at(state, self.warmup_epochs))

    def on_train_end(self, args, state, control, model=None, **kwargs):
        model.train_head_only(False)  # the trained model as any other (trainable_params, a later train())
