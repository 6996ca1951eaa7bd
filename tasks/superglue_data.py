"""SuperGLUE data: the official jsonl files read into the Hub's columns, one Features schema per dataset.

The official jsonl files `<Task>/{train,val,test}.jsonl` (split "validation" is val.jsonl) under --data_dir,
which may be the SuperGLUE folder or the task folder itself; explicit --*_file override; without either, the Hub
copy `aps/super_glue` (config = dataset name). Local files are read through tasks.io (UTF-8 with or without BOM,
LF or CRLF; a bad byte, a bad line, an empty label or an empty split is a DataError naming the file and line).
Each reader turns one json line into the task's raw rows; the column lists are in tasks/superglue.py's docstring.
example_reader wraps a reader as Task.read_example: one user record (an official jsonl line without idx and
label; the *_USER layouts below) -> the unlabelled rows with idx = the record's position.
"""

from __future__ import annotations

from collections.abc import Callable

import datasets

from tasks.io import (
    check_record,
    find_split_files,
    load_from_hub,
    read_jsonl,
    require_examples,
    require_keys,
    uses_local_files,
)
from tasks.registry import DataError

HUB_ID = "aps/super_glue"
LAYOUT = {"train": ("train.jsonl",), "validation": ("val.jsonl",), "test": ("test.jsonl",)}
BOOL_LABELS = ("False", "True")  # the Hub's order for boolq, wic, wsc, multirc

_STR, _INT, _LABEL = datasets.Value("string"), datasets.Value("int32"), datasets.Value("int64")


def _label_id(value, label_list: tuple[str, ...], where: str) -> int:
    """Id of a gold label. Boolean tasks accept JSON booleans, 0/1 (MultiRC) and "true"/"false" strings."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(f"{where}: empty label; expected one of {', '.join(label_list)}.")
    key = str(value)
    if label_list == BOOL_LABELS:
        key = {"0": "False", "1": "True"}.get(key, key.capitalize())
    if key not in label_list:
        raise DataError(f"{where}: label {value!r} is not one of {', '.join(label_list)}.")
    return label_list.index(key)


def flat_reader(*keys: str):
    """Reader for tasks whose json line already is one row: copy `keys`, idx and the label."""

    def read(row, where, label_list, labelled):
        require_keys(row, (*keys, "idx") + (("label",) if labelled else ()), where)
        out = {k: row[k] for k in (*keys, "idx")}
        out["label"] = _label_id(row["label"], label_list, where) if labelled else -1
        return [out]

    return read


def read_wsc(row, where, label_list, labelled):
    require_keys(row, ("text", "target", "idx") + (("label",) if labelled else ()), where)
    spans = ("span1_index", "span2_index", "span1_text", "span2_text")
    require_keys(row["target"], spans, where)
    n_words = len(row["text"].split())
    if not 0 <= row["target"]["span2_index"] < n_words:  # template 1 marks this word
        raise DataError(
            f"{where}: span2_index {row['target']['span2_index']} is outside the {n_words} words."
        )
    out = {"text": row["text"], **{k: row["target"][k] for k in spans}, "idx": row["idx"]}
    out["label"] = _label_id(row["label"], label_list, where) if labelled else -1
    return [out]


def read_multirc(row, where, label_list, labelled):
    """One row per answer option, as the Hub's multirc."""
    require_keys(row, ("idx", "passage"), where)
    require_keys(row["passage"], ("text", "questions"), where)
    rows = []
    for question in row["passage"]["questions"]:
        require_keys(question, ("question", "answers", "idx"), where)
        for answer in question["answers"]:
            require_keys(answer, ("text", "idx") + (("label",) if labelled else ()), where)
            label = _label_id(answer["label"], label_list, where) if labelled else -1
            idx = {"paragraph": row["idx"], "question": question["idx"], "answer": answer["idx"]}
            paragraph, text = row["passage"]["text"], answer["text"]
            rows.append(
                {"paragraph": paragraph, "question": question["question"], "answer": text}
                | {"idx": idx, "label": label}
            )
    return rows


def read_record(row, where, label_list, labelled):
    """One row per query. Candidates are the passage's distinct entity strings in order of appearance (entity
    `end` is inclusive), answers the distinct answer strings, as the Hub's record."""
    require_keys(row, ("idx", "passage", "qas"), where)
    require_keys(row["passage"], ("text", "entities"), where)
    text = row["passage"]["text"]
    spans = sorted((e["start"], e["end"]) for e in row["passage"]["entities"])
    entities = list(dict.fromkeys(text[start : end + 1] for start, end in spans))
    rows = []
    for qa in row["qas"]:
        require_keys(qa, ("query", "idx") + (("answers",) if labelled else ()), where)
        answers = sorted({a["text"] for a in qa.get("answers", [])})
        idx = {"passage": row["idx"], "query": qa["idx"]}
        rows.append(
            {"passage": text, "query": qa["query"], "entities": entities, "answers": answers, "idx": idx}
        )
    return rows


def example_reader(read: Callable, layout: dict, label_list):
    """Task.read_example of one dataset: `layout` checked (tasks.io.check_record), then the file reader on the
    record, unlabelled, with idx = index (after the record's fields: any idx of its own is overridden)."""

    def read_example(record: dict, index: int, where: str) -> list[dict]:
        check_record(record, layout, where)
        return read({**record, "idx": index}, where, label_list, labelled=False)

    return read_example


def loader(name: str, folder: str, features: datasets.Features, read: Callable, label_list):
    def load(data_args, splits) -> datasets.DatasetDict:
        if not uses_local_files(data_args):
            return load_from_hub(HUB_ID, name, splits).select_columns(list(features))
        files = find_split_files(data_args, splits, (folder, ""), LAYOUT)
        out = {}
        for split, path in files.items():
            labelled = split != "test"  # the official test files have no labels
            rows = [
                r
                for lineno, obj in read_jsonl(path)
                for r in read(obj, f"{path}:{lineno}", label_list, labelled)
            ]
            require_examples(rows, path, f"the official {folder}/{LAYOUT[split][0]} jsonl")
            out[split] = datasets.Dataset.from_list(rows, features=features)
        return datasets.DatasetDict(out)

    return load


# The datasets' columns (the Hub's names and types).
def _features(**columns) -> datasets.Features:
    return datasets.Features(columns)


BOOLQ = _features(question=_STR, passage=_STR, idx=_INT, label=_LABEL)
NLI = _features(premise=_STR, hypothesis=_STR, idx=_INT, label=_LABEL)
WIC = _features(word=_STR, sentence1=_STR, sentence2=_STR, idx=_INT, label=_LABEL)
WSC = _features(
    text=_STR, span1_index=_INT, span2_index=_INT, span1_text=_STR, span2_text=_STR, idx=_INT, label=_LABEL
)
COPA = _features(premise=_STR, choice1=_STR, choice2=_STR, question=_STR, idx=_INT, label=_LABEL)
MULTIRC = _features(
    paragraph=_STR,
    question=_STR,
    answer=_STR,
    idx={"paragraph": _INT, "question": _INT, "answer": _INT},
    label=_LABEL,
)
RECORD = _features(
    passage=_STR,
    query=_STR,
    entities=datasets.List(_STR),
    answers=datasets.List(_STR),
    idx={"passage": _INT, "query": _INT},
)


# The user records of predict.py (Task.read_example): an official jsonl line's fields, without idx and label.
def _strings(*keys: str) -> dict:
    return dict.fromkeys(keys, str)


BOOLQ_USER = _strings("question", "passage")
NLI_USER = _strings("premise", "hypothesis")
WIC_USER = _strings("word", "sentence1", "sentence2")
WSC_USER = {
    "text": str,
    "target": {"span1_index": int, "span2_index": int, "span1_text": str, "span2_text": str},
}
COPA_USER = _strings("premise", "choice1", "choice2", "question")
MULTIRC_USER = {
    "passage": {
        "text": str,
        "questions": [{"question": str, "idx": int, "answers": [{"text": str, "idx": int}]}],
    }
}
