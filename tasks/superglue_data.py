"""SuperGLUE data: the official jsonl files read into the Hub's columns, one Features schema per dataset.

The official jsonl files `<Task>/{train,val,test}.jsonl` (split "validation" is val.jsonl) under --data_dir,
which may be the SuperGLUE folder or the task folder itself; explicit --*_file override; without either, the Hub
copy `aps/super_glue` (config = dataset name). Local files are read through tasks.io (UTF-8 with or without BOM,
LF or CRLF; a bad byte, a bad line, an empty label or an empty split is a DataError naming the file and line).
Each reader turns one json line into the task's raw rows; the column lists are in tasks/superglue.py's docstring.
"""

from __future__ import annotations

from collections.abc import Callable

import datasets

from tasks.io import (
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

    def read(row, path, lineno, label_list, labelled):
        require_keys(row, (*keys, "idx") + (("label",) if labelled else ()), path, lineno)
        out = {k: row[k] for k in (*keys, "idx")}
        out["label"] = _label_id(row["label"], label_list, f"{path}:{lineno}") if labelled else -1
        return [out]

    return read


def read_wsc(row, path, lineno, label_list, labelled):
    require_keys(row, ("text", "target", "idx") + (("label",) if labelled else ()), path, lineno)
    spans = ("span1_index", "span2_index", "span1_text", "span2_text")
    require_keys(row["target"], spans, path, lineno)
    n_words = len(row["text"].split())
    if not 0 <= row["target"]["span2_index"] < n_words:  # template 1 marks this word
        raise DataError(
            f"{path}:{lineno}: span2_index {row['target']['span2_index']} is outside the {n_words} words."
        )
    out = {"text": row["text"], **{k: row["target"][k] for k in spans}, "idx": row["idx"]}
    out["label"] = _label_id(row["label"], label_list, f"{path}:{lineno}") if labelled else -1
    return [out]


def read_multirc(row, path, lineno, label_list, labelled):
    """One row per answer option, as the Hub's multirc."""
    require_keys(row, ("idx", "passage"), path, lineno)
    require_keys(row["passage"], ("text", "questions"), path, lineno)
    rows = []
    for question in row["passage"]["questions"]:
        require_keys(question, ("question", "answers", "idx"), path, lineno)
        for answer in question["answers"]:
            require_keys(answer, ("text", "idx") + (("label",) if labelled else ()), path, lineno)
            label = _label_id(answer["label"], label_list, f"{path}:{lineno}") if labelled else -1
            idx = {"paragraph": row["idx"], "question": question["idx"], "answer": answer["idx"]}
            paragraph, text = row["passage"]["text"], answer["text"]
            rows.append(
                {"paragraph": paragraph, "question": question["question"], "answer": text}
                | {"idx": idx, "label": label}
            )
    return rows


def read_record(row, path, lineno, label_list, labelled):
    """One row per query. Candidates are the passage's distinct entity strings in order of appearance (entity
    `end` is inclusive), answers the distinct answer strings, as the Hub's record."""
    require_keys(row, ("idx", "passage", "qas"), path, lineno)
    require_keys(row["passage"], ("text", "entities"), path, lineno)
    text = row["passage"]["text"]
    spans = sorted((e["start"], e["end"]) for e in row["passage"]["entities"])
    entities = list(dict.fromkeys(text[start : end + 1] for start, end in spans))
    rows = []
    for qa in row["qas"]:
        require_keys(qa, ("query", "idx") + (("answers",) if labelled else ()), path, lineno)
        answers = sorted({a["text"] for a in qa.get("answers", [])})
        idx = {"passage": row["idx"], "query": qa["idx"]}
        rows.append(
            {"passage": text, "query": qa["query"], "entities": entities, "answers": answers, "idx": idx}
        )
    return rows


def loader(name: str, folder: str, features: datasets.Features, read: Callable, label_list):
    def load(data_args, splits) -> datasets.DatasetDict:
        if not uses_local_files(data_args):
            return load_from_hub(HUB_ID, name, splits).select_columns(list(features))
        files = find_split_files(data_args, splits, (folder, ""), LAYOUT)
        out = {}
        for split, path in files.items():
            labelled = split != "test"  # the official test files have no labels
            rows = [
                r for lineno, obj in read_jsonl(path) for r in read(obj, path, lineno, label_list, labelled)
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
