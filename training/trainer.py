"""PTuningTrainer: HF Trainer extended only through public surfaces.

- `evaluate`/`predict` run the stock evaluation loop, then the task's own metric on (predictions, features, examples),
  so grouping metrics (MultiRC EM, ReCoRD, SQuAD post-processing) see their ids; as HF's QA example trainer.
- During training, each new best dev score (training/best.py) saves the trainable part to `<output_dir>/best_model`
  and keeps a copy of it; labelled test sets are scored ONCE after training with that best state (the original's
  best-test-at-best-dev, without scoring the test sets at every improvement). `eval_test_every_epoch` scores them at
  each improvement instead, as the original did (the per-epoch test curve), with the same numbers.
- Evaluation batches are grouped by length (training/eval_order.py); predictions come back in input order.
  `--train_sampling_strategy group_by_length` groups training batches only (HF 5 would reorder evaluation too).
- `create_scheduler` adds the original's ×0.95-per-epoch schedule; `compute_loss` stops on a NaN/inf loss.
- --head_learning_rate (`create_optimizer`: the head in its own param groups) and --head_warmup_epochs (the
  HeadWarmup callback), training/levers.py; unset, the optimizer and training are HF's own.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re

import torch
from safetensors.torch import load_file
from transformers import Trainer

from training.best import best_entry, best_results, improves
from training.eval_order import length_order, restore_order, token_loss
from training.levers import HeadWarmup, split_head_groups
from training.schedules import exponential_per_epoch

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    pass


def checkpoint_step(checkpoint) -> int:
    """The global step a checkpoint-N folder was saved at (0 for none: a fresh start)."""
    if not isinstance(checkpoint, str):
        return 0
    try:
        with open(os.path.join(checkpoint, "trainer_state.json")) as f:
            return int(json.load(f).get("global_step", 0))
    except (OSError, ValueError):
        return 0


class PTuningTrainer(Trainer):
    def __init__(
        self,
        *args,
        task,
        data_args,
        eval_examples=None,
        test_sets=None,
        lr_schedule: str = "hf",
        lr_decay: float = 0.95,
        eval_test_every_epoch: bool = False,
        group_eval_by_length: bool = True,
        best_state_max_bytes: int = 2**30,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.task, self.data_args = task, data_args  # task: a tasks.Task (with its family's arguments bound)
        self.eval_examples = eval_examples
        self.test_sets = test_sets or {}  # split -> (features, examples), labelled ones only
        self.lr_schedule, self.lr_decay = lr_schedule, lr_decay
        self.group_eval_by_length = group_eval_by_length
        state_bytes = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        # deferred test scoring needs the best epoch's state after training: a CPU copy (a prefix run's trainable
        # part is kilobytes to megabytes) or best_model/ on disk. A fine-tuned model over best_state_max_bytes with
        # --save_strategy no has neither: its test sets are scored at each improvement, as the original did.
        self._keep_best_in_memory = state_bytes <= best_state_max_bytes
        self.test_at_each_best = eval_test_every_epoch or not (
            self._keep_best_in_memory or self.args.save_strategy != "no"
        )
        self._best_state, self._best_state_step = None, None  # CPU copy of the best epoch's state_dict
        self._first_loss, self._warned_epoch = None, None  # the exploding-loss warning
        self._training = False
        if getattr(self.args, "head_warmup_epochs", 0):
            self.add_callback(HeadWarmup(self.args.head_warmup_epochs))

    # -- optimizer: --head_learning_rate ---------------------------------------------------------------------------
    def create_optimizer(self, model=None):
        """HF's optimizer; with --head_learning_rate the head's parameters (model.head_names()) in their own groups
        at that rate (training/levers.py split_head_groups)."""
        created = self.optimizer is None
        optimizer = super().create_optimizer(model)
        head_lr = getattr(self.args, "head_learning_rate", None)
        if created and head_lr is not None:
            head = self.model.head_names()
            split_head_groups(optimizer, [p for n, p in self.model.named_parameters() if n in head], head_lr)
        return optimizer

    # -- schedule --------------------------------------------------------------------------------------------------
    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_schedule == "exponential" and self.lr_scheduler is None:
            steps = len(self.get_train_dataloader()) // self.args.gradient_accumulation_steps
            self.lr_scheduler = exponential_per_epoch(optimizer or self.optimizer, steps, self.lr_decay)
            self._created_lr_scheduler = True
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    # -- loss guard ------------------------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        result = super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
        loss = result[0] if return_outputs else result
        if model.training and self._first_loss is None:
            self._first_loss = (
                loss.detach().float().item()
            )  # before any update: what "exploding" is measured against
        if model.training and not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.state.global_step + 1} "
                f"(epoch {math.floor(self.state.epoch or 0) + 1})"
            )
        return result

    def log(self, logs: dict, *args, **kwargs) -> None:
        """Warn (once per epoch) when the training loss explodes without becoming NaN: Adam and gradient clipping can
        keep a diverged run finite, at losses far above where it started."""
        loss = logs.get("loss")
        if loss is not None and self._first_loss is not None:
            epoch = math.floor(self.state.epoch or 0) + 1
            if loss > 10 * max(self._first_loss, 1.0) and self._warned_epoch != epoch:
                self._warned_epoch = epoch
                logger.warning(
                    "the training loss is %.4g at epoch %d, %.0fx its first value (%.4g): the run is diverging; "
                    "consider a lower --learning_rate.",
                    loss, epoch, loss / self._first_loss, self._first_loss,
                )  # fmt: skip
        super().log(logs, *args, **kwargs)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """HF's save (best_model/, checkpoints, the final model), with a failed write (a full disk ...) raised as one
        OSError naming the folder: the tokenizer's writer raises a bare Exception("File too large (os error 27)")."""
        folder = output_dir or self.args.output_dir
        try:
            super().save_model(output_dir, _internal_call)
        except OSError as err:
            raise OSError(
                err.errno, f"cannot write {folder}: {err.strerror or err}", err.filename or folder
            ) from err
        except Exception as err:
            code = re.search(r"os error (\d+)", str(err))
            if code is None:
                raise
            raise OSError(int(code.group(1)), str(err), folder) from err

    def save_stopped_results(self, reason: str) -> str:
        """After a non-finite loss: best_results.json of the epochs that finished (marked "stopped"), with the test
        sets scored at the best of them; returns the message that says exactly what to rerun."""
        kept = ""
        if self.test_sets and not self.test_at_each_best and self.state.log_history:
            self._score_tests_at_best()
        best = self.best_results()
        if best and self.is_world_process_zero():
            best["stopped"] = f"{reason}; these are the best of the epochs before it"
            self.save_metrics("best", best, combined=False)
            kept = f" The epochs before it are kept: best_results.json (marked stopped, best epoch {best['best_epoch']})."
        lr = self.args.learning_rate
        return (
            f"{reason}: training stopped.{kept} To retry, rerun the same command with --overwrite_output_dir and a "
            f"lower --learning_rate (e.g. --learning_rate {lr / 10:g}); resuming without --overwrite_output_dir would "
            "restore a checkpoint saved on the way to the divergence, with its optimizer state and the old learning "
            "rate. If the loss is NaN from the first steps, check the data for broken labels, or disable --fp16."
        )

    # -- training: track the best epoch, score the test sets with its state ----------------------------------------
    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        self._training = True
        resumed_step = checkpoint_step(resume_from_checkpoint)
        try:
            output = super().train(resume_from_checkpoint, *args, **kwargs)
        finally:
            self._training = False
        if self.test_sets and not self.test_at_each_best:
            self._score_tests_at_best()
        # HF's train_loss, train_runtime ... cover the steps this call ran: say which
        output.metrics["train_steps_run"] = self.state.global_step - resumed_step
        if resumed_step:
            output.metrics["train_resumed_from_step"] = resumed_step
        return output

    def save_train_results(self, metrics: dict) -> dict:
        """train_results.json (and all_results.json) of this call; when it trained nothing (a rerun of a finished
        run), the recorded ones are kept and returned instead of HF's empty ones (train_loss 0.0)."""
        path = os.path.join(self.args.output_dir, "train_results.json")
        if metrics.get("train_steps_run") == 0 and os.path.isfile(path):
            with open(path) as f:
                recorded = json.load(f)
            logger.warning(
                "The run had already finished (step %d): nothing was trained; its %s is kept.",
                self.state.global_step,
                path,
            )
            return recorded
        if metrics.get("train_resumed_from_step"):
            logger.warning(
                "train_loss and train_runtime cover steps %d-%d, the part of the run after the resume.",
                metrics["train_resumed_from_step"] + 1,
                self.state.global_step,
            )
        self.log_metrics("train", metrics)
        self.save_metrics("train", metrics)
        return metrics

    def best_results(self) -> dict:
        return best_results(self.state.log_history, self.task.main_metric)

    def _score_tests_at_best(self) -> None:
        """Score every labelled test set once with the best dev epoch's state and log the scores at that epoch's
        step, so best_results() pairs them exactly as if they had been measured during training."""
        best = best_entry(self.state.log_history, self.task.main_metric)
        if best is None or any(
            k.startswith("test") and e.get("step") == best["step"] for e in self.state.log_history for k in e
        ):
            return  # no dev score, or already scored (a resumed run that finished its deferred scoring)
        best_state = self._best_state if self._best_state_step == best["step"] else None
        if best_state is None:  # the best epoch came before a resume: its state is on disk
            path = os.path.join(self.args.output_dir, "best_model", "model.safetensors")
            if not os.path.exists(path):
                logger.warning(
                    "the best epoch's state is neither in memory nor at %s: test sets not scored", path
                )
                return
            best_state = load_file(path)
        model = self.model
        final_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        model.load_state_dict(best_state)
        try:
            for split, (features, examples) in self.test_sets.items():
                prefix = "test" if len(self.test_sets) == 1 else f"test_{split}"
                _, metrics = self._predict_and_score(features, examples, prefix)
                logger.info("%s at the best dev epoch (%s): %s", prefix, best.get("epoch"), metrics)
                self.state.log_history.append({**metrics, "epoch": best.get("epoch"), "step": best["step"]})
        finally:
            model.load_state_dict(final_state)

    # -- evaluation with the task's metric -------------------------------------------------------------------------
    def get_eval_dataloader(self, eval_dataset=None):
        """Rows in the order given: task metrics pair predictions with features by row (our length grouping is a
        `select` that restore_order undoes). Today's HF also length-groups EVALUATION under
        --train_sampling_strategy group_by_length, in shuffled megabatches, which scrambled every metric; as in
        the original's transformers 4.11 (--group_by_length), that strategy applies to training batches only."""
        strategy = self.args.train_sampling_strategy
        if strategy == "group_by_length":  # the evaluation sampler is sequential for any other value
            self.args.train_sampling_strategy = "random"
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.args.train_sampling_strategy = strategy

    def _predict_and_score(self, features, examples, prefix: str):
        order = length_order(features) if self.group_eval_by_length else None
        metric_fn, self.compute_metrics = self.compute_metrics, None
        try:
            output = self.evaluation_loop(
                self.get_eval_dataloader(features if order is None else features.select(order)),
                description=prefix,
                prediction_loss_only=False,
                metric_key_prefix=prefix,
            )
        finally:
            self.compute_metrics = metric_fn
        predictions, label_ids = output.predictions, output.label_ids
        if order is not None:  # back to input order before any metric or file sees them
            predictions, label_ids = restore_order(predictions, order), restore_order(label_ids, order)
        metrics = dict(output.metrics)
        if self.task.hints.collator == "token_classification" and label_ids is not None:
            metrics[f"{prefix}_loss"] = token_loss(predictions, label_ids)  # independent of batching
        labelled = {"labels", "start_positions"} & set(features.column_names)  # QA labels are answer spans
        if labelled or prefix == "eval":
            scores = self.task.compute_metrics(predictions, features, examples, self.data_args)
            metrics.update({f"{prefix}_{k}": v for k, v in scores.items()})
        return predictions, metrics

    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", eval_examples=None
    ):
        features = self.eval_dataset if eval_dataset is None else eval_dataset
        examples = self.eval_examples if eval_examples is None else eval_examples
        _, metrics = self._predict_and_score(features, examples, metric_key_prefix)
        key = f"{metric_key_prefix}_{self.task.main_metric}"
        if self._training and metric_key_prefix == "eval" and key in metrics:
            if improves(self.state.log_history, self.task.main_metric, metrics[key]):
                self._on_new_best(metrics)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _on_new_best(self, metrics: dict) -> None:
        logger.info(
            "new best %s = %.4f at epoch %s",
            self.task.main_metric,
            metrics[f"eval_{self.task.main_metric}"],
            self.state.epoch,
        )
        if self.args.save_strategy != "no":  # --save_strategy no saves nothing, as the original's scripts
            self.save_model(os.path.join(self.args.output_dir, "best_model"))
        if not self.test_sets:
            return
        if not self.test_at_each_best:  # scored once after training (_score_tests_at_best)
            if self._keep_best_in_memory:
                self._best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
                }
                self._best_state_step = self.state.global_step
            return
        with torch.random.fork_rng():  # test scoring must not move the training's random stream
            for split, (features, examples) in self.test_sets.items():
                prefix = "test" if len(self.test_sets) == 1 else f"test_{split}"
                _, test_metrics = self._predict_and_score(features, examples, prefix)
                self.log(test_metrics)  # same step as this evaluation: best_results() pairs them

    def predict_split(self, features, examples, prefix: str = "test"):
        """(raw predictions, metrics) on one split; metrics only where it has labels."""
        predictions, metrics = self._predict_and_score(features, examples, prefix)
        return predictions, {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}
