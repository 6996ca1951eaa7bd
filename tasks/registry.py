"""The task registry: one `Task` row per (task_name, dataset_name), registered by its family file.

A family is one module `tasks/<family>.py` (superglue, glue, ner, srl, qa) that calls `register_specs(SPECS, to_task)`
at import time: one Task per row of its spec table. Nothing else lists datasets: argument choices, run.py and search.py all ask the registry.
Your own data is one more row in the ner and glue families (--dataset_name custom, tasks/custom.py, imported after the
families as an EXTENSION): its label list is known only from its files, so its registered row carries `own_data`, and
run.py takes `task.resolve(data_args)` (labels from --train_file), serving `task.from_record(record)` (labels from the
checkpoint); both give a Task whose label_list, head size, metrics and records are that data's. For every registered
dataset both return the task unchanged.

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
      One JSON-serialisable row per example for --do_predict files (SuperGLUE: the leaderboard's {"idx",
      "label"}); `Prediction.key` names the key of those rows that holds the prediction.
  Prediction.read_example(record, index, where) -> list[dict]   (optional; predict.py's raw user records)
      One user record (a dict in the fields of the task's official files, e.g. {"premise", "hypothesis"})
      -> the task's raw rows, exactly the columns `load` gives, unlabelled (label -1, placeholder tags, no
      answers). `index` (the record's 0-based position in the input) always becomes the example id (idx /
      id), whatever id the record holds, so predictions_to_records rows match back to records. A missing or
      ill-typed field is a DataError "<where>: ..." naming the field and the layout expected (where =
      "file:line"). None: the task cannot be predicted from raw records; `Prediction.unsupported` says why and
      what to use instead. Task.examples_from_records runs it over many records into one Dataset typed as
      `load`'s (`raw_features`).

A family with arguments of its own (QA's n_best_size, ...) defines them as a dataclass and sets it as its tasks'
`args` (FamilyArgs(cls=...)): arguments.py adds every family's dataclass to the command line (`family_arguments()`), and run.py
binds the parsed one with `Task.bind_args`, which passes it to compute_metrics / predictions_to_records as the
keyword `task_args`. run.py, the trainer and arguments.py name no family.

This package is the bottom layer: it imports nothing from model/, training/ or arguments.py.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial

import datasets

from tasks.task_type import TaskType

# The task families, each one module of this package. Their datasets are registered inside those modules.
FAMILIES = ("superglue", "glue", "ner", "srl", "qa")
# Modules that register datasets into those families: your own data (--dataset_name custom)
EXTENSIONS = ("custom",)

_REGISTRY: dict[tuple[str, str], Task] = {}


class DataError(ValueError):
    """Missing or malformed data: the message names the file (and line) and the expected layout."""


class Schedule(StrEnum):
    """The original's learning-rate schedules: HF linear decay (its BaseTrainer: SuperGLUE, GLUE) or x0.95 per
    epoch without warm-up (its ExponentialTrainer: NER, SRL, QA)."""

    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class Collator(StrEnum):
    """How features become batches (training/data.py)."""

    DEFAULT = "default"  # padded to max length (or dynamically)
    TOKEN_CLASSIFICATION = "token_classification"  # labels padded with -100
    MULTIPLE_CHOICE = "multiple_choice"  # (batch, choices, length)


@dataclass(frozen=True)
class TrainingHints:
    """What the generic runner asks of the task instead of naming its family."""

    schedule: Schedule = Schedule.LINEAR
    collator: Collator = Collator.DEFAULT
    max_seq_length: int = 128  # --max_seq_length when not given (QA windows: 384, as HF run_qa)
    fast_tokenizer: bool = (
        False  # load a fast tokenizer even where the backbone prefers a slow one (QA offsets)
    )
    pretokenized: bool = (
        False  # inputs are word lists (NER/SRL): RoBERTa-style tokenizers need add_prefix_space
    )


@dataclass(frozen=True)
class Prediction:
    """Labelling raw user records (predict.py; see the module docstring)."""

    # read_example(record: dict, index: int, where: str) -> list[dict]: one user record -> its unlabelled raw rows,
    # with `index` as the example id; None: not predictable from raw records (`unsupported` says why)
    read_example: Callable | None = None
    key: str = "label"  # the key of predictions_to_records rows that holds the prediction
    unsupported: str | None = None  # why read_example is None, with what to use instead
    # the raw columns' types, as `load` builds its local splits (examples_from_records gives the same)
    raw_features: datasets.Features | None = field(default=None, compare=False)


@dataclass(frozen=True)
class FamilyArgs:
    """A family's own command-line arguments (see the module docstring)."""

    cls: type | None = None  # the dataclass (QA's QuestionAnsweringArguments)
    overrides: dict = field(
        default_factory=dict, compare=False
    )  # values a dataset forces (squad_v2: version 2)
    check: Callable | None = None  # check(data_args): ValueError on a combination the task refuses


@dataclass(frozen=True)
class OwnData:
    """A dataset of your own (tasks/custom.py): what the registry cannot know (the label list, the text columns) is
    read from --train_file, or from a checkpoint's task record (serving)."""

    # describe(train_file) -> the description: a JSON-able dict {"labels": [...] or None, ...}; DataError file:line
    describe: Callable
    build: Callable  # build(description) -> the Task for exactly that description (its `own_data` holds it)
    description: dict | None = None  # the built Task's (None on the registered row); args.json, checkpoint


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
    test_splits: tuple[str, ...] = ("test",)  # SRL conll2005 has ("test_wsj", "test_brown")
    predictions_to_records: Callable | None = None
    hub_id: str | None = None  # the Hub dataset used when no local file is given
    hints: TrainingHints = TrainingHints()
    prediction: Prediction = Prediction()
    args: FamilyArgs = FamilyArgs()
    own_data: OwnData | None = None  # a dataset of your own: resolve() it before use

    @property
    def num_labels(self) -> int:
        return len(self.label_list) if self.label_list else 1

    def examples_from_records(
        self, records: list[dict], where: list[str]
    ) -> tuple[datasets.Dataset, list[int]]:
        """Raw rows of every record (via read_example, record i with index=i and where[i]) as one
        datasets.Dataset with the same columns/types `load` gives, plus for each raw row the index of the
        record it came from."""
        if self.prediction.read_example is None:
            raise DataError(
                f"--task_name {self.family} --dataset_name {self.name} cannot label raw records: "
                f"{self.prediction.unsupported}"
            )
        rows, origin = [], []
        for index, (record, at) in enumerate(zip(records, where, strict=True)):
            read = self.prediction.read_example(record, index, at)
            rows += read
            origin += [index] * len(read)
        return datasets.Dataset.from_list(rows, features=self.prediction.raw_features), origin

    def resolve(self, data_args) -> Task:
        """This task as its data defines it. A dataset of your own (`own_data`) reads its label list (and text
        columns) from --train_file, also when only evaluating or predicting; a registered dataset, or one already
        resolved, comes back as it is."""
        if self.own_data is None or self.own_data.description is not None:
            return self
        if not data_args.train_file:
            raise DataError(
                f"--task_name {self.family} --dataset_name {self.name} reads its labels from --train_file: give "
                "it (the file the model is or was trained on), with --validation_file/--test_file as needed."
            )
        return self.own_data.build(self.own_data.describe(data_args.train_file))

    def from_record(self, record: dict) -> Task:
        """The task a checkpoint's task record (model/checkpoint.py `task_record`) describes: a dataset of your own is
        rebuilt from its recorded description; a registered dataset comes back as it is."""
        if self.own_data is None:
            return self
        if not isinstance(record.get("own_data"), dict):
            raise DataError(
                f"--dataset_name {self.name}: the checkpoint's task record holds no 'own_data' description (its "
                "labels): retrain it with this version."
            )
        return self.own_data.build(record["own_data"])

    def bind_args(self, family_args: Sequence) -> Task:
        """This task with its family's parsed arguments (the instance of `args_class` among `family_args`, as
        arguments.get_args returns them) passed as `task_args=` to compute_metrics and predictions_to_records.
        A task whose family has no arguments comes back unchanged."""
        task_args = next((a for a in family_args if self.args.cls and isinstance(a, self.args.cls)), None)
        if task_args is None:
            return self
        records = self.predictions_to_records
        return dataclasses.replace(
            self,
            compute_metrics=partial(self.compute_metrics, task_args=task_args),
            predictions_to_records=records and partial(records, task_args=task_args),
        )


def register_task(task: Task) -> Task:
    key = (task.family, task.name)
    if key in _REGISTRY:
        raise ValueError(f"task {key} is registered twice")
    _REGISTRY[key] = task
    return task


def register_specs(specs: Sequence, to_task: Callable) -> dict[str, Task]:
    """Register `to_task(spec)` for every spec row of a family; returns {dataset name: Task}."""
    return {spec.name: register_task(to_task(spec)) for spec in specs}


def _load_families() -> None:
    for module in (*FAMILIES, *EXTENSIONS):
        importlib.import_module(f"tasks.{module}")


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


def family_arguments() -> dict[str, type]:
    """The families' own argument dataclasses, keyed by their args.json section ("<family>_args"), in FAMILIES
    order: arguments.py parses each of them after the three standard ones."""
    _load_families()
    out = {}
    for (family, _), task in _REGISTRY.items():
        if task.args.cls is not None:
            out.setdefault(f"{family}_args", task.args.cls)
    return dict(sorted(out.items(), key=lambda item: FAMILIES.index(item[0].removesuffix("_args"))))
