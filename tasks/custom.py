"""Your own data: --dataset_name custom in the ner and glue families, with --train_file / --validation_file
[/ --test_file], as HF's run_ner.py / run_glue.py. The label list is read from the training file (Task.resolve,
also when only evaluating or predicting), recorded in args.json and the checkpoint's task record (`own_data`),
and rebuilt from that record when serving (Task.from_record).

Tagging (--task_name ner --dataset_name custom): a file ending in .jsonl or .json holds one JSON object per line,
{"tokens": [word, ...], "tags": [tag, ...]} ("ner_tags" is read too); any other file is a CoNLL-style column file:
one word per line, word first and tag last, 2 or more whitespace-separated columns; blank lines and `-DOCSTART-`
lines end a sentence. Tags are O, B-<type> or I-<type> (IOB1 or IOB2, normalised to IOB2 as conll2003's,
tasks/tag_schemes.py). The tag set: O, then B-<type> and I-<type> for each entity type of the training file, types
sorted (e.g. O, B-DOSE, I-DOSE, B-DRUG, I-DRUG); a dev/test tag of another type is a DataError naming file:line.
Scored by seqeval (entity F1, the main metric), as conll2003.

Classification and regression (--task_name glue --dataset_name custom): .jsonl/.json (one object per line), .csv or
.tsv (a header line, quotes as in Excel's CSV) with the fields sentence1 [, sentence2], label; the training file
decides whether there is a sentence2, and every file must agree. A label is a string or a number (JSON, or text that
reads as one: 3, -1, 0.25, 1e-3). Regression iff every training label is a number and at least one of them is not an
integer (0.5, 3.7): one output, MSE, scored by Pearson (main) and Spearman. Otherwise classification: each label is a
class, named by its text (an integer by its value, so 1, 1.0 and "1" are one class), classes sorted (numerically when
all are integers); scored by accuracy (main) and macro-F1. A dev/test label not in the training file is a DataError
naming file:line. Test labels are optional (all lines or none): without them, --do_predict writes predictions only.
"""

from __future__ import annotations

import dataclasses
import math
import re
from functools import partial

import datasets

from tasks import glue, ner, tagging
from tasks.classification_metrics import accuracy, f1_macro, pearson, spearman
from tasks.io import EXPLICIT_FILE_FLAGS
from tasks.own_files import (
    TEXT_COLUMNS,
    LabelledRow,
    class_name,
    iob2_tags,
    number_value,
    read_labelled_file,
    read_tagged_file,
)
from tasks.registry import DataError, OwnData, Prediction, Task, register_task
from tasks.tagging import TaggingSpec

NAME = "custom"


def split_files(data_args, splits) -> dict[str, str]:
    """Each requested split's file: only the explicit --train_file / --validation_file / --test_file."""
    found = {}
    for split in splits:
        flag = EXPLICIT_FILE_FLAGS[split]
        if not getattr(data_args, flag, None):
            raise DataError(f"--dataset_name {NAME} needs --{flag} for the {split} split (your own file).")
        found[split] = getattr(data_args, flag)
    return found


def _unresolved(task: Task, own_data: OwnData) -> Task:
    """The registered row: the family's task type, hints and main metric, but no labels until resolved."""

    def needs_labels(*args, **kwargs):
        raise DataError(
            f"--task_name {task.family} --dataset_name {NAME} has no labels until they are read: use "
            "Task.resolve(data_args) (from --train_file) or Task.from_record(a checkpoint's task record) first."
        )

    why = (
        "its labels come from your training file: predict with a trained checkpoint, whose record holds them."
    )
    return dataclasses.replace(
        task,
        load=needs_labels,
        preprocess=needs_labels,
        compute_metrics=needs_labels,
        label_list=None,
        predictions_to_records=None,
        prediction=Prediction(unsupported=why),
        own_data=own_data,
    )


def _description_labels(description: dict, what: str) -> list[str] | None:
    if not isinstance(description, dict):
        raise DataError(f"--dataset_name {NAME}: a {what} description is a dict, got {description!r}")
    labels = description.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise DataError(
            f"--dataset_name {NAME}: a {what} description needs 'labels' (a list of names): {description}"
        )
    return labels


# ------------------------------------------------------------------------------------------------------------
# Tagging


def describe_tagging(path: str) -> dict:
    """{"labels": O, then B-<type>, I-<type> for each entity type of the training file, types sorted}."""
    types = {tag[2:] for sentence in read_tagged_file(path) for tag in iob2_tags(sentence) if tag != "O"}
    if not types:
        raise DataError(
            f"{path}: every tag is O: the training file needs entities (B-<type> / I-<type> tags)."
        )
    return {"labels": ["O", *(f"{prefix}-{kind}" for kind in sorted(types) for prefix in "BI")]}


def load_tagging(data_args, splits, *, spec: TaggingSpec) -> datasets.DatasetDict:
    """The requested splits as ner rows {"id", "tokens", "ner_tags"}; a tag outside the tag set: DataError."""
    allowed = set(spec.label_list)
    out = {}
    for split, path in split_files(data_args, splits).items():
        rows = []
        for sentence in read_tagged_file(path):
            tags = iob2_tags(sentence)
            bad = next((k for k, tag in enumerate(tags) if tag not in allowed), None)
            if bad is not None:
                raise DataError(
                    f"{sentence.where(bad)}: tag {sentence.tags[bad]!r} is not in the training file's tag set "
                    f"({', '.join(spec.label_list)}): its type never occurs in --train_file {data_args.train_file}."
                )
            rows.append({"id": str(len(rows)), "tokens": sentence.tokens, ner.TAG_COLUMN: tags})
        out[split] = tagging.tagging_dataset(rows, ner.TAG_COLUMN)
    return datasets.DatasetDict(out)


def build_tagging(description: dict) -> Task:
    """The ner task of exactly this tag set (its head size, seqeval metric, records and predict.py rows)."""
    labels = tuple(_description_labels(description, "tagging") or ())
    if not labels or labels[0] != "O":
        raise DataError(
            f"--dataset_name {NAME}: a tagging description needs labels starting with O: {description}"
        )
    spec = TaggingSpec(NAME, (), {}, labels)
    task = tagging.tagging_task(
        "ner", spec, load=load_tagging, compute_metrics=ner.compute_metrics, tag_column=ner.TAG_COLUMN
    )
    return dataclasses.replace(
        task, own_data=OwnData(describe_tagging, build_tagging, {"labels": list(labels)})
    )


# ------------------------------------------------------------------------------------------------------------
# Sentence (pair) classification and regression


def describe_classification(path: str) -> dict:
    """{"labels": sorted class names, or None for regression; "regression"; "text_columns"} of a training file."""
    rows = read_labelled_file(path)
    columns = [k for k in TEXT_COLUMNS if k in rows[0].texts]
    for row in rows:
        if row.label is None:
            raise DataError(f"{row.where}: no label; every line of the training file needs one.")
    numbers = [number_value(row.label) for row in rows]
    if all(x is not None for x in numbers) and any(not x.is_integer() for x in numbers):
        for row, x in zip(rows, numbers, strict=True):
            if not math.isfinite(x):
                raise DataError(f"{row.where}: score {row.label!r} is not a finite number.")
        return {"labels": None, "regression": True, "text_columns": columns}
    names = {class_name(row.label, row.where) for row in rows}
    if len(names) < 2:
        raise DataError(
            f"{path}: every line has the label {names.pop()!r}: a classifier needs two labels or more (for "
            "regression, write the scores as numbers, at least one of them not an integer)."
        )
    integers = all(re.fullmatch(r"-?\d+", name) for name in names)
    labels = sorted(names, key=int) if integers else sorted(names)
    return {"labels": labels, "regression": False, "text_columns": columns}


def _gold(row: LabelledRow, spec: glue.GlueSpec, train_file: str):
    if spec.label_list is None:  # regression: a finite number
        x = number_value(row.label)
        if x is None or not math.isfinite(x):
            raise DataError(f"{row.where}: score {row.label!r} is not a finite number.")
        return x
    name = class_name(row.label, row.where)
    if name not in spec.label_list:
        raise DataError(
            f"{row.where}: label {name!r} is not one of the training file's labels ({', '.join(spec.label_list)}); "
            f"add it to --train_file {train_file} or fix the line."
        )
    return spec.label_list.index(name)


def load_classification(data_args, splits, *, spec: glue.GlueSpec, features) -> datasets.DatasetDict:
    """The requested splits as glue rows {sentence1[, sentence2], "label", "idx"}: label = class id or score; an
    unlabelled test file gets the placeholder -1 (classification) or NaN (regression)."""
    out = {}
    for split, path in split_files(data_args, splits).items():
        rows = read_labelled_file(path)
        unlabelled = split == "test" and all(row.label is None for row in rows)
        examples = []
        for row in rows:
            if set(row.texts) != set(spec.keys):
                found, wanted = ", ".join(row.texts), ", ".join(spec.keys)
                raise DataError(f"{row.where}: fields {found}, but the training file has {wanted}.")
            if unlabelled:
                label = math.nan if spec.label_list is None else -1
            elif row.label is None:
                why = "the file's other lines have one: label all or none" if split == "test" else "needed"
                raise DataError(f"{row.where}: no label ({why}).")
            else:
                label = _gold(row, spec, data_args.train_file)
            examples.append({**row.texts, "idx": len(examples), "label": label})
        out[split] = datasets.Dataset.from_list(examples, features=features)
    return datasets.DatasetDict(out)


def _accuracy_f1(preds, gold) -> dict:
    return {"accuracy": accuracy(preds, gold), "f1": f1_macro(preds, gold)}


def _correlations(preds, gold) -> dict:
    return {"pearson": pearson(preds, gold), "spearmanr": spearman(preds, gold)}


def build_classification(description: dict) -> Task:
    """The glue task of exactly these labels (None: regression) and text columns."""
    labels = _description_labels(description, "classification")
    columns = description.get("text_columns")
    if columns not in (["sentence1"], ["sentence1", "sentence2"]):
        raise DataError(
            f"--dataset_name {NAME}: 'text_columns' must be [sentence1 [, sentence2]]: {description}"
        )
    regression = labels is None
    spec = glue.GlueSpec(
        NAME, "", tuple(columns), None if regression else tuple(labels), numeric=False,
        scores=_correlations if regression else _accuracy_f1, main_metric="pearson" if regression else "accuracy",
    )  # fmt: skip
    task = glue.glue_task(spec)
    resolved = {"labels": labels, "regression": regression, "text_columns": list(columns)}
    return dataclasses.replace(
        task,
        load=partial(load_classification, spec=spec, features=task.prediction.raw_features),
        hub_id=None,
        own_data=OwnData(describe_classification, build_classification, resolved),
    )


# ------------------------------------------------------------------------------------------------------------
# The registered rows (resolved per run)

CLASSIFICATION = register_task(
    _unresolved(
        build_classification({"labels": ["a", "b"], "text_columns": ["sentence1"]}),
        OwnData(describe_classification, build_classification),
    )
)
TAGGING = register_task(
    _unresolved(build_tagging({"labels": ["O", "B-X", "I-X"]}), OwnData(describe_tagging, build_tagging))
)
