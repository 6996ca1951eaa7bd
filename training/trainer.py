"""PTuningTrainer: HF Trainer extended only through public surfaces.

- `evaluate`/`predict` run the stock evaluation loop, then the task's own metric on (predictions, features, examples),
  so grouping metrics (MultiRC EM, ReCoRD, SQuAD post-processing) see their ids; as HF's QA example trainer.
- During training, each new best dev score (training/best.py) saves the trainable part to `<output_dir>/best_model`
  and, when labelled test sets are given, scores them at that epoch (the original's best-test-at-best-dev).
- `create_scheduler` adds the original's ×0.95-per-epoch schedule; `compute_loss` stops on a NaN/inf loss.
"""

from __future__ import annotations

import logging
import math
import os

import torch
from transformers import Trainer

from training.best import best_results, improves
from training.schedules import exponential_per_epoch

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    pass


class PTuningTrainer(Trainer):
    def __init__(
        self,
        *args,
        task,
        data_args,
        qa_args=None,
        eval_examples=None,
        test_sets=None,
        lr_schedule: str = "hf",
        lr_decay: float = 0.95,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.task, self.data_args, self.qa_args = task, data_args, qa_args
        self.eval_examples = eval_examples
        self.test_sets = test_sets or {}  # split -> (features, examples), labelled ones only
        self.lr_schedule, self.lr_decay = lr_schedule, lr_decay
        self._training = False

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
        if model.training and not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"the training loss became {loss.item()} at step {self.state.global_step}: stopping before any "
                "result is written. Lower --learning_rate, disable --fp16, or check the data for broken labels; "
                "the last saved checkpoint (if any) is intact."
            )
        return result

    # -- training: track the best epoch ----------------------------------------------------------------------------
    def train(self, *args, **kwargs):
        self._training = True
        try:
            return super().train(*args, **kwargs)
        finally:
            self._training = False

    def best_results(self) -> dict:
        return best_results(self.state.log_history, self.task.main_metric)

    # -- evaluation with the task's metric -------------------------------------------------------------------------
    def _predict_and_score(self, features, examples, prefix: str):
        metric_fn, self.compute_metrics = self.compute_metrics, None
        try:
            output = self.evaluation_loop(
                self.get_eval_dataloader(features),
                description=prefix,
                prediction_loss_only=False,
                metric_key_prefix=prefix,
            )
        finally:
            self.compute_metrics = metric_fn
        metrics = dict(output.metrics)
        labelled = {"labels", "start_positions"} & set(features.column_names)  # QA labels are answer spans
        if labelled or prefix == "eval":
            scores = self.task.compute_metrics(
                output.predictions,
                features,
                examples,
                self.data_args,
                **({"qa_args": self.qa_args} if self.qa_args is not None else {}),
            )
            metrics.update({f"{prefix}_{k}": v for k, v in scores.items()})
        return output.predictions, metrics

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
        for split, (features, examples) in self.test_sets.items():
            prefix = "test" if len(self.test_sets) == 1 else f"test_{split}"
            _, test_metrics = self._predict_and_score(features, examples, prefix)
            self.log(test_metrics)  # same step as this evaluation: best_results() pairs them

    def predict_split(self, features, examples, prefix: str = "test"):
        """(raw predictions, metrics) on one split; metrics only where it has labels."""
        predictions, metrics = self._predict_and_score(features, examples, prefix)
        return predictions, {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}
