"""The task registry: one `Task` row per (task_name, dataset_name), registered by its family file.

A family is one module `tasks/<family>.py` (superglue, glue, ner, srl, qa) that calls `register_task(Task(...))` once
per dataset at import time. Nothing else lists datasets: argument choices, run.py and search.py all ask the registry.

Contract of the callables (run.py is the only caller besides tests):
  load(data_args, splits) -> datasets.DatasetDict
      Raw examples for the requested split names only ("train", "validation", "test", or a task's extra
      `test_splits` such as "test_wsj"). Source: explicit --train_file/--validation_file/--test_file, else the
      official layout under --data_dir, else the HF Hub (datasets.load_dataset on a parquet-backed id).
      Bad layout or lines raise `DataError` naming the file (and line) and the expected layout.
  preprocess(batch, tokenizer, data_args) -> dict
      A batched `datasets.map` function: raw columns -> model inputs (input_ids, attention_mask, [token_type_ids],
      labels) plus any bookkeeping columns the metric needs (e.g. "example_id", "offset_mapping"). run.py maps it
      with remove_columns=<raw columns>, so one example may give several features (QA windows, ReCoRD entities).
  compute_metrics(predictions, features, examples, data_args) -> dict[str, float]
      predictions: the model's raw logits for `features` in order (numpy; QA: a (start, end) tuple). Labels are
      read from `features["labels"]` or `examples`, never from the Trainer, so grouping metrics (MultiRC EM,
      ReCoRD, SQuAD) see their ids. Keys have no "eval_" prefix; `main_metric` is one of them.
  predictions_to_records(predictions, features, examples, data_args) -> list[dict]   (optional)
      One JSON-serialisable row per example for --do_predict files (SuperGLUE: the leaderboard's {"idx", "label"}).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from model.utils import TaskType

# The task families, each one module of this package. Their datasets are registered inside those modules.
FAMILIES = ("superglue", "glue", "ner", "srl", "qa")

_REGISTRY: dict[tuple[str, str], Task] = {}


class DataError(ValueError):
    """Missing or malformed data: the message names the file (and line) and the expected layout."""


@dataclass(frozen=True)
class Task:
    family: str  # --task_name
    name: str  # --dataset_name
    task_type: TaskType
    load: Callable
    preprocess: Callable
    compute_metrics: Callable
    main_metric: str  # best-epoch tracking key (without "eval_"), as the original's test_key
    label_list: tuple[str, ...] | None = None  # None: regression (1 output), multiple choice (1 score) or QA
    schedule: str = (
        "linear"  # the original's: "linear" (SuperGLUE/GLUE) or "exponential" x0.95/epoch (NER/SRL/QA)
    )
    collator: str = "default"  # "default" (padded to max length), "token_classification" or "multiple_choice"
    pretokenized: bool = (
        False  # inputs are word lists (NER/SRL): RoBERTa-style tokenizers need add_prefix_space
    )
    test_splits: tuple[str, ...] = ("test",)  # SRL conll2005 has ("test_wsj", "test_brown")
    predictions_to_records: Callable | None = None
    hub_id: str | None = None  # the Hub dataset used when no local file is given
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def num_labels(self) -> int:
        return len(self.label_list) if self.label_list else 1


def register_task(task: Task) -> Task:
    key = (task.family, task.name)
    if key in _REGISTRY:
        raise ValueError(f"task {key} is registered twice")
    _REGISTRY[key] = task
    return task


def _load_families() -> None:
    for family in FAMILIES:
        importlib.import_module(f"tasks.{family}")


def dataset_names(family: str) -> list[str]:
    """The --dataset_name choices of one --task_name, in registration order."""
    _load_families()
    return [name for fam, name in _REGISTRY if fam == family]


def get_task(family: str, name: str) -> Task:
    """The registered task, or a ValueError that lists the valid choices."""
    if family not in FAMILIES:
        raise ValueError(f"unknown --task_name {family!r}; choose one of: {', '.join(FAMILIES)}")
    _load_families()
    if (family, name) not in _REGISTRY:
        raise ValueError(
            f"unknown --dataset_name {name!r} for --task_name {family}; choose one of: "
            f"{', '.join(dataset_names(family))}"
        )
    return _REGISTRY[(family, name)]
