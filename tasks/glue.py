"""GLUE: cola mnli mrpc qnli qqp rte sst2 stsb wnli, one registered Task each (a port of HF run_glue, as the
original tasks/glue/dataset.py); your own sentence (pair) labels or scores are --dataset_name custom (tasks/custom.py,
built on glue_task).

Data. The GLUE download script's layout `<TASK>/{train,dev,test}.tsv` (folders CoLA MNLI MRPC QNLI QQP RTE
SST-2 STS-B WNLI; MNLI's validation/test are dev_matched.tsv/test_matched.tsv) under --data_dir, which may be
the GLUE folder or the task folder itself; explicit --*_file override; without either, the Hub copy
`nyu-mll/glue`. MNLI's mismatched sets load as the extra splits "validation_mismatched" / "test_mismatched".
TSV files are read through tasks.io.read_lines (UTF-8 with or without BOM, as MRPC's; LF or CRLF), split on
tabs with quotes kept as text (csv.QUOTE_NONE), and columns are found by header name. CoLA train/dev have no header and are read by position (source, label, mark, sentence).
Every dataset ends as the Hub's columns: its text column(s) (run_glue's task_to_keys), `label` and `idx`
(the file's index/id column, else the row number). `label` is an id into label_list (the Hub's order), a
float for stsb, -1 where the split has no labels (test).

Metrics are the Hub `glue` metric's keys: matthews_correlation (cola), pearson + spearmanr (stsb),
accuracy + f1 (mrpc, qqp), accuracy otherwise; `combined_score` (their mean) where there are several, as the
original added it. predictions_to_records gives {"index", "prediction"} rows (the GLUE server's columns) with
the label spelt as the official TSV spells it (0/1, a class name, or the stsb score).

Raw user records (Task.read_example, for predict.py): {<text columns>: string} in the Hub's names
(spec.keys, e.g. sentence1/sentence2, question/sentence, sentence) -> the row read_tsv gives an unlabelled
test line, idx = the record's position; prediction rows keyed "prediction".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import datasets
import numpy as np

from tasks.classification_metrics import accuracy, f1_binary, matthews_corrcoef, pearson, spearman
from tasks.io import (
    check_record,
    find_split_files,
    load_from_hub,
    read_lines,
    require_examples,
    uses_local_files,
)
from tasks.registry import DataError, Prediction, Schedule, Task, TrainingHints, register_specs
from tasks.task_type import TaskType

HUB_ID = "nyu-mll/glue"
LAYOUT = {"train": ("train.tsv",), "validation": ("dev.tsv",), "test": ("test.tsv",)}
MNLI_LAYOUT = {
    "train": ("train.tsv",),
    "validation": ("dev_matched.tsv",),
    "test": ("test_matched.tsv",),
    "validation_mismatched": ("dev_mismatched.tsv",),
    "test_mismatched": ("test_mismatched.tsv",),
}
MNLI_HUB_SPLITS = {"validation": "validation_matched", "test": "test_matched"}  # the others keep their names


# The Hub `glue` metric's keys per dataset: (predictions, gold) -> scores.
def _accuracy(preds, gold) -> dict:
    return {"accuracy": accuracy(preds, gold)}


def _accuracy_f1(preds, gold) -> dict:  # mrpc, qqp
    return {"accuracy": accuracy(preds, gold), "f1": f1_binary(preds, gold)}


def _matthews(preds, gold) -> dict:  # cola
    return {"matthews_correlation": matthews_corrcoef(preds, gold)}


def _correlations(preds, gold) -> dict:  # stsb
    return {"pearson": pearson(preds, gold), "spearmanr": spearman(preds, gold)}


@dataclass(frozen=True)
class GlueSpec:
    """What differs between the GLUE datasets.

    keys: the Hub's text columns (one or two); source: Hub column -> TSV header name where they differ
    (including "label"); numeric: gold labels are written as class ids (0/1) rather than class names;
    positional: column names of header-less files (CoLA); scores: the metric.
    """

    name: str
    folder: str
    keys: tuple[str, ...]
    label_list: tuple[str, ...] | None  # None: regression (stsb)
    source: dict[str, str] = field(default_factory=dict)
    numeric: bool = True
    positional: tuple[str, ...] | None = None
    scores: Callable = _accuracy
    main_metric: str = "accuracy"
    layout: dict = field(default_factory=lambda: LAYOUT)


# ------------------------------------------------------------------------------------------------------------
# Reading the TSV files.
# ------------------------------------------------------------------------------------------------------------


def _gold_label(value: str, spec: GlueSpec, where: str):
    if spec.label_list is None:  # stsb: a finite score (a nan would only surface later as a nan loss)
        if not value.strip():
            raise DataError(f"{where}: empty score.")
        try:
            score = float(value)
        except ValueError:
            raise DataError(f"{where}: score {value!r} is not a number.") from None
        if not math.isfinite(score):
            raise DataError(f"{where}: score {value!r} is not a finite number.")
        return score
    if spec.numeric:
        if value.isdigit() and int(value) < len(spec.label_list):
            return int(value)
        choices = ", ".join(str(i) for i in range(len(spec.label_list)))
    else:
        if value in spec.label_list:
            return spec.label_list.index(value)
        choices = ", ".join(spec.label_list)
    if not value.strip():
        raise DataError(f"{where}: empty label; expected one of {choices}.")
    raise DataError(f"{where}: label {value!r} is not one of {choices}.")


def _index(value: str, where: str) -> int:
    if not value.isdigit():
        raise DataError(f"{where}: index {value!r} is not a non-negative integer.")
    return int(value)


def read_tsv(path: str, spec: GlueSpec, labelled: bool) -> list[dict]:
    """The rows of one GLUE TSV as the Hub's columns. A missing column, a row with the wrong number of
    fields or an unknown label is a DataError naming file:line.

    Fields are the line split on tabs (csv.QUOTE_NONE: quotes are text); lines come from read_lines, which
    drops MRPC's BOM and accepts CRLF."""
    wanted = {key: spec.source.get(key, key) for key in (*spec.keys, "label")}
    # a blank line (spaces at most) has no fields; a line of tabs is a row of empty fields, and an error below
    lines = (
        (lineno, line.split("\t") if line.strip() or "\t" in line else [])
        for lineno, line in read_lines(path)
    )
    first = next((line for line in lines if line[1]), None)  # the header (or first row): first non-blank line
    if first is None:
        raise DataError(f"{path}: empty file (expected the official GLUE {spec.folder} TSV).")
    if all(wanted[k] in first[1] for k in spec.keys):
        header, rows = first[1], lines
    elif spec.positional and len(first[1]) == len(spec.positional):  # header-less (CoLA train/dev)
        header, rows = list(spec.positional), itertools.chain([first], lines)
    else:
        expected = ", ".join(wanted[k] for k in spec.keys)
        raise DataError(
            f"{path}:{first[0]}: no header with the column(s) {expected} "
            f"(expected the official GLUE {spec.folder} TSV)."
        )
    if labelled and wanted["label"] not in header:
        raise DataError(
            f"{path}:{first[0]}: no {wanted['label']!r} column: the {spec.folder} file has no labels."
        )
    index_column = next((c for c in ("index", "id") if c in header), None)
    out = []
    for lineno, fields in rows:
        where = f"{path}:{lineno}"
        if not fields:  # a blank line (e.g. a trailing one)
            continue
        if len(fields) != len(header):
            raise DataError(f"{where}: {len(fields)} tab-separated fields, the header has {len(header)}.")
        row = dict(zip(header, fields, strict=True))
        example = {key: row[wanted[key]] for key in spec.keys}
        example["idx"] = _index(row[index_column], where) if index_column else len(out)
        example["label"] = _gold_label(row[wanted["label"]], spec, where) if labelled else -1
        out.append(example)
    return require_examples(out, path, f"the official GLUE {spec.folder} TSV")


def _features(spec: GlueSpec) -> datasets.Features:
    label = datasets.Value("float32") if spec.label_list is None else datasets.Value("int64")
    texts = {k: datasets.Value("string") for k in spec.keys}
    return datasets.Features({**texts, "label": label, "idx": datasets.Value("int32")})


def _example_reader(spec: GlueSpec):
    def read_example(record: dict, index: int, where: str) -> list[dict]:
        """One user record {<spec.keys>: text} -> the row of an unlabelled test line (label -1), idx=index."""
        check_record(record, dict.fromkeys(spec.keys, str), where)
        return [{**{key: record[key] for key in spec.keys}, "idx": index, "label": -1}]

    return read_example


def _loader(spec: GlueSpec):
    def load(data_args, splits) -> datasets.DatasetDict:
        columns = [*spec.keys, "label", "idx"]
        if not uses_local_files(data_args):
            rename = MNLI_HUB_SPLITS if spec.name == "mnli" else None
            return load_from_hub(HUB_ID, spec.name, splits, rename).select_columns(columns)
        files = find_split_files(data_args, splits, (spec.folder, ""), spec.layout)
        return datasets.DatasetDict(
            {
                split: datasets.Dataset.from_list(
                    read_tsv(path, spec, labelled=not split.startswith("test")), features=_features(spec)
                )
                for split, path in files.items()
            }
        )

    return load


# ------------------------------------------------------------------------------------------------------------
# Preprocessing, metrics, prediction rows.
# ------------------------------------------------------------------------------------------------------------


def _preprocessor(spec: GlueSpec):
    def preprocess(batch, tokenizer, data_args):
        """run_glue: tokenizer(text[, pair]) truncated longest_first, padded to max_seq_length if asked."""
        max_length = min(data_args.max_seq_length, tokenizer.model_max_length)
        padding = "max_length" if data_args.pad_to_max_length else False
        texts = [batch[k] for k in spec.keys]
        encoded = dict(tokenizer(*texts, truncation=True, max_length=max_length, padding=padding))
        encoded["labels"] = list(batch["label"])
        return encoded

    return preprocess


def _outputs(predictions, spec: GlueSpec) -> np.ndarray:
    logits = np.asarray(predictions[0] if isinstance(predictions, tuple) else predictions)
    return logits.reshape(-1) if spec.label_list is None else np.argmax(logits, axis=-1)


def _metrics(spec: GlueSpec):
    def compute_metrics(predictions, features, examples, data_args):
        scores = spec.scores(_outputs(predictions, spec), np.asarray(features["labels"]))
        if len(scores) > 1:
            scores["combined_score"] = float(np.mean(list(scores.values())))
        return scores

    return compute_metrics


def _records(spec: GlueSpec):
    def to_records(predictions, features, examples, data_args):
        preds = _outputs(predictions, spec)
        if len(preds) != len(examples):
            raise ValueError(f"{len(preds)} predictions for {len(examples)} examples")
        if spec.label_list is None:
            labels = [float(p) for p in preds]
        else:
            labels = [int(p) if spec.numeric else spec.label_list[p] for p in preds]
        return [
            {"index": int(i), "prediction": label} for i, label in zip(examples["idx"], labels, strict=True)
        ]

    return to_records


# ------------------------------------------------------------------------------------------------------------
# The datasets, one row each (label names in the Hub's order; ids as the official files write them).
# ------------------------------------------------------------------------------------------------------------

NLI2 = ("entailment", "not_entailment")
SPECS = (
    GlueSpec("cola", "CoLA", ("sentence",), ("unacceptable", "acceptable"),
             positional=("source", "label", "mark", "sentence"), scores=_matthews,
             main_metric="matthews_correlation"),
    GlueSpec("mnli", "MNLI", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
             source={"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}, numeric=False,
             layout=MNLI_LAYOUT),
    GlueSpec("mrpc", "MRPC", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"),
             source={"sentence1": "#1 String", "sentence2": "#2 String", "label": "Quality"}, scores=_accuracy_f1),
    GlueSpec("qnli", "QNLI", ("question", "sentence"), NLI2, numeric=False),
    GlueSpec("qqp", "QQP", ("question1", "question2"), ("not_duplicate", "duplicate"),
             source={"label": "is_duplicate"}, scores=_accuracy_f1),
    GlueSpec("rte", "RTE", ("sentence1", "sentence2"), NLI2, numeric=False),
    GlueSpec("sst2", "SST-2", ("sentence",), ("negative", "positive")),
    GlueSpec("stsb", "STS-B", ("sentence1", "sentence2"), None, source={"label": "score"}, scores=_correlations,
             main_metric="pearson"),
    GlueSpec("wnli", "WNLI", ("sentence1", "sentence2"), ("not_entailment", "entailment")),
)  # fmt: skip


def glue_task(spec: GlueSpec) -> Task:
    """The Task of one spec row (tasks/custom.py builds one for the labels and text columns of your own file)."""
    return Task(
        family="glue",
        name=spec.name,
        task_type=TaskType.SEQUENCE_CLASSIFICATION,
        load=_loader(spec),
        preprocess=_preprocessor(spec),
        compute_metrics=_metrics(spec),
        main_metric=spec.main_metric,
        label_list=spec.label_list,
        predictions_to_records=_records(spec),
        hub_id=HUB_ID,
        hints=TrainingHints(schedule=Schedule.LINEAR),  # the original's BaseTrainer: HF linear decay
        prediction=Prediction(_example_reader(spec), key="prediction", raw_features=_features(spec)),
    )


TASKS: dict[str, Task] = register_specs(SPECS, glue_task)  # dataset name -> its registered Task
