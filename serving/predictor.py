"""Predictor: one frozen backbone loaded once, any number of trained checkpoints attached by name, raw examples of
all of them labelled in mixed batches.

    from serving import Predictor
    predictor = Predictor("path/to/backbone")
    predictor.attach("rte", "runs/rte/best_model")
    predictor.attach("ner", "runs/conll03/best_model")
    predictor.predict([{"premise": "...", "hypothesis": "..."}, {"tokens": ["EU", "rejects", "..."]}],
                      adapters=["rte", "ner"])
    # -> [{"prediction": "entailment", "scores": {...}}, {"prediction": ["B-ORG", "O", ...], "scores": [...]}]

A checkpoint is a best_model/ folder of run.py whose method runs on a shared frozen backbone (--prefix, --prompt:
model/methods.py `not_servable` is None), or its run folder, which stands for its
best_model/ (model/checkpoint.py `resolve_checkpoint_dir`). Its meta record says the task, label names, method and
preprocessing arguments (your own data's task is rebuilt from the labels it records, Task.from_record); each record
is read and preprocessed by its task's own code (Task.examples_from_records, Task.preprocess) and post-processed by it
(Task.predictions_to_records). Records longer than --max_seq_length
(serving/windows.py): a tagging record is cut into overlapping word windows, so every word gets its tag and score; a
classification or multiple-choice record is truncated by its task, and its result says so ("truncated": true).
Non-finite weights or logits are refused, naming the adapter.
Features of all adapters are sorted by length and batched together: one batch mixes adapters
(model/multi_adapter.py), so K adapters cost one backbone's memory and one backbone's passes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import partial
from types import SimpleNamespace

import datasets
import numpy as np
import torch

from model.backbones import get_backbone
from model.config import MethodConfig, PTuningError
from model.loading import check_model_path, load_backbone, load_config, load_tokenizer, read_checkpoint
from model.methods import METHODS
from model.multi_adapter import MultiAdapterModel, build_on
from serving import outputs, windows
from tasks import DataError, get_task
from tasks.task_type import TaskType

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclasses.dataclass
class Adapter:
    name: str
    index: int  # in the MultiAdapterModel
    task: object  # tasks.Task, bound to its family arguments
    data_args: SimpleNamespace  # the preprocessing arguments it was trained with
    tokenizer: object
    path: str


@dataclasses.dataclass
class Job:
    """One adapter's share of a predict call."""

    positions: list[int]  # the records it labels, as positions in the call's input
    examples: object  # datasets.Dataset: the task's raw rows of those records
    row_record: list[int]  # raw row -> its record (0-based among `positions`)
    features: object  # what the model runs: the task's features, or tagging windows
    # tagging: per raw row, for each word the (feature, token) whose logits tag it (serving/windows.py)
    word_positions: list | None = None
    truncated: list[bool] | None = None  # classification / multiple choice: per feature, cut by the task


def resolve_device(device: str | None) -> torch.device:
    """`device` as a torch.device that works here (default: cuda when available); a one-line PTuningError else."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise PTuningError(
            f"--device {device!r} is not a device ({str(err).splitlines()[0]}): use cpu, cuda or cuda:N."
        ) from None
    if resolved.type == "meta":
        raise PTuningError("--device meta holds no weights: use cpu, cuda or cuda:N.")
    try:
        torch.empty(0, device=resolved)
    except Exception as err:  # CPU-only torch: AssertionError; a missing GPU index: RuntimeError
        cuda = f"torch.cuda.is_available() is {torch.cuda.is_available()}, {torch.cuda.device_count()} GPU(s)"
        raise PTuningError(
            f"--device {device!r} cannot be used here ({str(err).splitlines()[0]}; {cuda}): use --device cpu "
            "or a device this machine has."
        ) from None
    return resolved


class Predictor:
    def __init__(self, model_name_or_path: str, device: str | None = None, attn_implementation: str = "sdpa"):
        self.path = model_name_or_path
        self.device = resolve_device(device)  # before the backbone loads: a bad device fails at once
        try:
            check_model_path(
                "--model_name_or_path", model_name_or_path
            )  # a missing local path: no Hub retries
        except ValueError as err:
            raise PTuningError(str(err)) from None
        config = load_config(model_name_or_path)
        # any head may be attached: keep the pooler where the backbone has one (sequence classification reads it)
        self.attn_implementation = (
            attn_implementation if get_backbone(config).attention == "interface" else "eager"
        )
        backbone = load_backbone(
            model_name_or_path, pooler=True, attn_implementation=self.attn_implementation, config=config
        )
        self.model = MultiAdapterModel(backbone.to(self.device).eval())
        self.adapters: dict[str, Adapter] = {}
        self._tokenizers: dict[tuple, object] = {}

    # -- attaching checkpoints -------------------------------------------------------------------------------------
    def attach(self, name: str, checkpoint_dir: str) -> Adapter:
        """Load the trained prefix/prompt + head of `checkpoint_dir` (a run.py best_model/ folder, or its run folder:
        then its best_model/, even though the run folder also holds the last epoch's weights) as `name`."""
        if name in self.adapters:
            raise PTuningError(f"adapter name {name!r} is used twice: give each checkpoint its own name.")
        try:
            checkpoint = read_checkpoint(checkpoint_dir, self.model.config, self.path)
        except PTuningError as err:
            raise PTuningError(f"adapter {name!r}: {err}") from None
        checkpoint_dir, meta = checkpoint.path, checkpoint.meta
        record = meta.get("task") or {}
        method = METHODS[meta["method"]]  # read_checkpoint refused a method this version does not know
        if method.not_servable is not None:  # it changes the backbone: a shared frozen one cannot run it
            raise PTuningError(
                f"adapter {name!r} ({checkpoint_dir}) is {method.not_servable}; use run.py --do_predict "
                "--ptuning_checkpoint with it."
            )
        missing = [k for k in ("task", "method_config") if k not in meta]
        if missing:
            raise PTuningError(
                f"adapter {name!r}: {checkpoint_dir} does not record {' and '.join(missing)} (the task family, "
                "dataset, label names, preprocessing arguments and every method flag); it was saved by an older "
                "version. Retrain it with this version, or predict with run.py --do_predict --ptuning_checkpoint."
            )
        try:  # your own data: the task rebuilt from the labels (and text columns) the record holds
            task = get_task(record["family"], record["dataset"]).from_record(record)
        except DataError as err:
            raise PTuningError(f"adapter {name!r} ({checkpoint_dir}): {err}") from None
        if task.prediction.read_example is None:
            raise PTuningError(f"adapter {name!r} ({task.family} {task.name}): {task.prediction.unsupported}")
        if task.label_list and list(task.label_list) != record["labels"]:
            raise PTuningError(
                f"adapter {name!r}: its labels {record['labels']} differ from {task.name}'s {list(task.label_list)}."
            )
        if task.args.cls is not None and record.get("task_args") is not None:
            task = task.bind_args([task.args.cls(**record["task_args"])])
        attn = self.attn_implementation
        method_config = MethodConfig.from_record(meta["method_config"], attn_implementation=attn)
        num_labels = meta["num_labels"]
        model = build_on(self.model.backbone, method_config, TaskType[meta["task_type"]], num_labels)
        model.load_state_dict(checkpoint.tensors)
        index = self.model.add(name, model.to(self.device))
        data_args = SimpleNamespace(  # run.py records max_seq_length, doc_stride and template_id, resolved
            **record["data_args"],
            pad_to_max_length=False,  # dynamic padding: a mixed batch is padded to its own longest row
        )
        adapter = Adapter(name, index, task, data_args, self._tokenizer(task), checkpoint_dir)
        self.adapters[name] = adapter
        return adapter

    def _tokenizer(self, task):
        """The tokenizer exactly as run.py loads it for this task (model/loading.py), one per kind of task."""
        key = (task.hints.pretokenized, task.hints.fast_tokenizer)
        if key not in self._tokenizers:
            self._tokenizers[key] = load_tokenizer(self.path, task, self.model.config)
        return self._tokenizers[key]

    # -- predicting ------------------------------------------------------------------------------------------------
    def predict(
        self, records: list[dict], adapters=None, batch_size: int = 64, where=None, progress: bool = False
    ) -> list[dict]:
        """One {"prediction", "scores"} per record, in input order, plus "truncated": true where the task cut the
        record to --max_seq_length (classification, multiple choice; tagging records are windowed instead).

        `records`: a list of dicts, each in its task's record format. `adapters`: one name per record, or one name for
        all; None: each record's own "adapter" key, else the one adapter attached. `where`: per record a location for
        error messages (predict.py passes "file:line")."""
        records, names, where = self._inputs(records, adapters, where)
        jobs = {}
        for name, adapter in self.adapters.items():
            positions = [i for i, n in enumerate(names) if n == name]
            if positions:
                jobs[name] = self._features(
                    adapter, positions, [records[i] for i in positions], [where[i] for i in positions]
                )
        logits = self._run(jobs, batch_size, progress)
        results: list = [None] * len(records)
        for name, job in jobs.items():
            adapter = self.adapters[name]
            self._check_finite(adapter, logits[name])
            features, feature_logits = job.features, logits[name]
            if job.word_positions is not None:  # tagging: each word's logits from the window that tags it
                feature_logits = [
                    np.stack([logits[name][f][t] for f, t in words]) for words in job.word_positions
                ]
                # one labelled position per word: task_predictions / predictions_to_records see word-level logits
                features = {"labels": [[0] * len(words) for words in job.word_positions]}
            task = adapter.task
            rows = task.predictions_to_records(
                outputs.task_predictions(task, feature_logits), features, job.examples, adapter.data_args
            )
            scores = outputs.row_scores(task, feature_logits, features, job.examples, rows)
            per_record = outputs.per_record(task, rows, scores, job.row_record, len(job.positions))
            cut = set()
            if job.truncated is not None:  # features are 1:1 with raw rows here
                cut = {job.row_record[r] for r, was_cut in enumerate(job.truncated) if was_cut}
            for k, (i, out) in enumerate(zip(job.positions, per_record, strict=True)):
                results[i] = {**out, "truncated": True} if k in cut else out
        return results

    def _inputs(self, records, adapters, where) -> tuple[list[dict], list[str], list[str]]:
        """(records, adapter name per record, location per record), or a one-line PTuningError."""
        if isinstance(records, Mapping) or isinstance(records, (str, bytes)):
            raise PTuningError(
                f"predict() takes a list of records, got a {type(records).__name__}: pass [record] for one record."
            )
        records = list(records)
        where = list(where) if where is not None else [f"record {i}" for i in range(len(records))]
        for record, loc in zip(records, where, strict=True):
            if not isinstance(record, Mapping):
                raise PTuningError(
                    f"{loc}: a record is a dict of its task's fields, got a {type(record).__name__}."
                )
        loaded = ", ".join(self.adapters) or "none (call attach(name, checkpoint) first)"
        if adapters is None:
            names = []
            for record, loc in zip(records, where, strict=True):
                name = record.get("adapter")
                if name is None and len(self.adapters) != 1:
                    raise PTuningError(
                        f'{loc}: no "adapter" key, and {len(self.adapters)} adapters are attached ({loaded}): give '
                        'each record an "adapter", or pass adapters= (one name, or one per record).'
                    )
                names.append(next(iter(self.adapters)) if name is None else name)
        else:
            names = [adapters] * len(records) if isinstance(adapters, str) else list(adapters)
            if len(names) != len(records):
                raise PTuningError(
                    f"adapters= gives {len(names)} names for {len(records)} records: give one name, or one per record."
                )
            for record, name, loc in zip(records, names, where, strict=True):
                if record.get("adapter", name) != name:
                    raise PTuningError(
                        f'{loc}: its "adapter" is {record["adapter"]!r} but adapters= says {name!r}: give one of them.'
                    )
        for name, loc in zip(names, where, strict=True):
            if name not in self.adapters:
                raise PTuningError(f"{loc}: unknown adapter {name!r}; loaded: {loaded}.")
        return records, names, where

    def _features(self, adapter: Adapter, positions, records, where) -> Job:
        task = adapter.task
        examples, row_record = task.examples_from_records(records, where)
        preprocess = partial(task.preprocess, tokenizer=adapter.tokenizer, data_args=adapter.data_args)
        features = examples.map(preprocess, batched=True, remove_columns=examples.column_names)
        job = Job(positions, examples, row_record, features)
        # tagging: the task gives one feature per raw row, cut at --max_seq_length; run windows of it instead
        if task.task_type == TaskType.TOKEN_CLASSIFICATION:
            row_where = [where[r] for r in row_record]
            columns, job.word_positions = windows.tagging_windows(
                task, adapter.tokenizer, adapter.data_args, examples, features, row_where
            )
            job.features = datasets.Dataset.from_dict(columns)
        elif task.task_type != TaskType.QUESTION_ANSWERING:  # one feature per raw row, maybe truncated
            job.truncated = windows.truncated_features(
                task, adapter.tokenizer, adapter.data_args, examples, features
            )
        return job

    @staticmethod
    def _check_finite(adapter: Adapter, logits: list[np.ndarray]) -> None:
        """A one-line PTuningError naming the adapter when any of its logits is NaN or inf."""
        bad = sum(not np.isfinite(x).all() for x in logits)
        if bad:
            raise PTuningError(
                f"adapter {adapter.name!r} ({adapter.path}) gives non-finite logits (NaN or inf) on {bad} of its "
                f"{len(logits)} inputs: its weights overflow on this backbone; check that this is the backbone it "
                "was trained on, or retrain it."
            )

    def _run(self, jobs: dict[str, Job], batch_size: int, progress: bool) -> dict[str, list]:
        """Per adapter, the logits of each of its features (numpy, trimmed to the feature's own length)."""
        from tqdm.auto import tqdm

        units = []  # (adapter name, feature index, its rows (dicts of input lists))
        for name, job in jobs.items():
            features = job.features
            keys = [k for k in INPUT_KEYS if k in features.column_names]
            choices = self.adapters[name].task.task_type == TaskType.MULTIPLE_CHOICE
            for i, feature in enumerate(features.select_columns(keys)):
                if choices:  # (C, T): one row per choice
                    units.append(
                        (
                            name,
                            i,
                            [{k: feature[k][c] for k in keys} for c in range(len(feature["input_ids"]))],
                        )
                    )
                else:
                    units.append((name, i, [feature]))
        units.sort(key=lambda u: -max(len(r["input_ids"]) for r in u[2]))  # longest first: little padding
        logits = {name: [None] * len(job.features) for name, job in jobs.items()}
        tokenizer = next(iter(self.adapters.values())).tokenizer
        batches = [units[i : i + batch_size] for i in range(0, len(units), batch_size)]
        with torch.no_grad():
            for batch in tqdm(batches, desc="Predicting", disable=not progress or len(batches) < 2):
                rows = [r for _, _, unit_rows in batch for r in unit_rows]
                padded = tokenizer.pad(rows, return_tensors="pt")
                row_adapter = torch.tensor(
                    [self.adapters[name].index for name, _, unit_rows in batch for _ in unit_rows]
                )
                inputs = {k: v.to(self.device) for k, v in padded.items() if k in INPUT_KEYS}
                scores = self.model(**inputs, row_adapter=row_adapter.to(self.device))
                taken = dict.fromkeys(scores, 0)
                for name, i, unit_rows in batch:
                    a, n = self.adapters[name].index, len(unit_rows)
                    x = scores[a][taken[a] : taken[a] + n].float().cpu().numpy()
                    taken[a] += n
                    length = len(unit_rows[0]["input_ids"])
                    if self.adapters[name].task.task_type == TaskType.MULTIPLE_CHOICE:
                        logits[name][i] = x[:, 0]  # (C,)
                    elif x.ndim == 3:
                        logits[name][i] = x[0, :length]  # (T, labels) or (T, 2)
                    else:
                        logits[name][i] = x[0]  # (labels,)
        return logits
