"""Reading your own files (tasks/custom.py): tagged sentences (jsonl or CoNLL-style columns) and labelled sentences
(jsonl, csv or tsv), each bad line a DataError naming file:line. Every file goes through tasks.io.read_lines (UTF-8
with or without BOM, LF or CRLF).

  read_tagged_file(path) -> [TaggedSentence(tokens, tags as written, where(k) = "file:line" of tag k)]
      .jsonl/.json: one {"tokens": [word, ...], "tags": [tag, ...]} object per line ("ner_tags" is read too);
      anything else: word first, tag last, 2+ whitespace-separated columns; blank and -DOCSTART- lines end a sentence.
  iob2_tags(sentence) -> its tags in IOB2 (tasks/tag_schemes.py to_iob2); a tag that is not O / B-X / I-X: DataError.
  read_labelled_file(path) -> [LabelledRow(where, {"sentence1"[, "sentence2"]}, label as written or None)]
      .jsonl/.json: one object per line; .csv/.tsv: a header line naming the columns (others are ignored), quotes
      as Python's csv module (Excel's dialect); an empty label cell is no label.
  number_value(label) -> float | None; class_name(label, where) -> the class's name (an integer by its value).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from typing import NamedTuple

from tasks import tag_schemes, tagging
from tasks.io import check_record, read_jsonl, read_lines, require_examples
from tasks.registry import DataError

JSON_SUFFIXES = (".jsonl", ".json")
TABLE_SEPARATORS = {".csv": ",", ".tsv": "\t"}
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # what reads as a number in a text label
TEXT_COLUMNS = ("sentence1", "sentence2")


# ------------------------------------------------------------------------------------------------------------
# Tagged sentences


class TaggedSentence(NamedTuple):
    tokens: list[str]
    tags: list[str]  # as written
    where: Callable[[int], str]  # where tag k is: "file:line"


def read_tagged_file(path: str) -> list[TaggedSentence]:
    """The sentences of a jsonl (.jsonl/.json) or column file, tags as written; bad lines: DataError file:line."""
    if not path.lower().endswith(JSON_SUFFIXES):
        sentences = tagging.read_column_file(path, 0, -1, sep=None, min_columns=2)
        out = [TaggedSentence(s.tokens, s.tags, lambda k, s=s: f"{path}:{s.lineno + k}") for s in sentences]
        return require_examples(out, path, "word ... tag lines, a blank line between sentences")
    out = []
    for lineno, row in read_jsonl(path):
        where = f"{path}:{lineno}"
        key = "ner_tags" if "ner_tags" in row and "tags" not in row else "tags"
        check_record(row, {"tokens": [str], key: [str]}, where)
        tokens, tags = row["tokens"], row[key]
        blank = next((k for k, token in enumerate(tokens) if not token.strip()), None)
        if not tokens or blank is not None:
            what = "'tokens' is empty" if not tokens else f"'tokens[{blank}]' is blank"
            raise DataError(f"{where}: {what}; expected a list of words (non-empty strings).")
        if len(tags) != len(tokens):
            raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} tags; give one tag per token.")
        out.append(TaggedSentence(tokens, tags, lambda k, w=where: w))
    return require_examples(out, path, 'one {"tokens": [...], "tags": [...]} object per line')


def iob2_tags(sentence: TaggedSentence) -> list[str]:
    """The sentence's tags in IOB2 (an IOB1 I- that starts an entity becomes B-); anything but O, B-X, I-X is a
    DataError naming its file:line."""
    tags = tag_schemes.to_iob2(sentence.tags)
    for k, tag in enumerate(tags):
        prefix, _, kind = tag.partition("-")
        if tag != "O" and not (prefix in ("B", "I") and kind):
            raise DataError(
                f"{sentence.where(k)}: tag {sentence.tags[k]!r} is not O, B-<type> or I-<type> (IOB1 or IOB2 tags; "
                "BIOES and bare type names are not read)."
            )
    return tags


# ------------------------------------------------------------------------------------------------------------
# Labelled sentences (pairs)


class LabelledRow(NamedTuple):
    where: str  # "file:line"
    texts: dict[str, str]  # sentence1 [, sentence2]
    label: object  # as written: a string, a JSON number or boolean; None where the line has none


def _table_rows(path: str, delimiter: str) -> list[LabelledRow]:
    numbers: list[int] = []  # the line number of each line the csv reader has taken

    def texts():
        for lineno, text in read_lines(path):
            numbers.append(lineno)
            yield text

    header, out = None, []
    try:
        for fields in csv.reader(texts(), delimiter=delimiter):
            where = f"{path}:{numbers[-1]}"
            if not any(field.strip() for field in fields):
                continue  # a blank line
            if header is None:
                header = [field.strip() for field in fields]
                if "sentence1" not in header:
                    raise DataError(
                        f"{where}: the header {header} has no 'sentence1' column; expected a header line naming "
                        "sentence1 [, sentence2], label."
                    )
                continue
            if len(fields) != len(header):
                raise DataError(f"{where}: {len(fields)} fields, the header has {len(header)}.")
            row = dict(zip(header, fields, strict=True))
            label = row.get("label", "").strip() or None
            out.append(LabelledRow(where, {k: row[k] for k in TEXT_COLUMNS if k in row}, label))
    except csv.Error as err:
        raise DataError(f"{path}:{numbers[-1] if numbers else 1}: not valid CSV ({err}).") from None
    return out


def _jsonl_rows(path: str) -> list[LabelledRow]:
    out = []
    for lineno, row in read_jsonl(path):
        where = f"{path}:{lineno}"
        check_record(row, {k: str for k in TEXT_COLUMNS if k in row or k == "sentence1"}, where)
        label = row.get("label")
        if label is not None and not isinstance(label, str | int | float):
            raise DataError(
                f"{where}: field 'label' must be a string or a number, got {type(label).__name__}."
            )
        out.append(LabelledRow(where, {k: row[k] for k in TEXT_COLUMNS if k in row}, label))
    return out


def read_labelled_file(path: str) -> list[LabelledRow]:
    """The rows of a .jsonl/.json, .csv or .tsv file; bad lines: DataError file:line."""
    suffix = next((s for s in (*JSON_SUFFIXES, *TABLE_SEPARATORS) if path.lower().endswith(s)), None)
    if suffix is None:
        raise DataError(
            f"{path}: name it .jsonl, .json (one object per line), .csv or .tsv: the suffix says its format."
        )
    rows = _jsonl_rows(path) if suffix in JSON_SUFFIXES else _table_rows(path, TABLE_SEPARATORS[suffix])
    return require_examples(rows, path, "lines with sentence1 [, sentence2], label")


def number_value(value) -> float | None:
    """A label's value when it is a number (a JSON number, or text that reads as one), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return float(value) if NUMBER.fullmatch(value.strip()) else None


def class_name(value, where: str) -> str:
    """A class label's name: an integer by its value ("1" for 1, 1.0, "1.0"), a boolean as true/false, else its
    text (stripped); an empty or non-finite label is a DataError."""
    number = number_value(value)
    if number is not None and not math.isfinite(number):
        raise DataError(f"{where}: label {value!r} is not a finite number.")
    if number is not None and number.is_integer():
        return str(int(number))
    if isinstance(value, bool):
        return str(value).lower()
    name = value.strip() if isinstance(value, str) else repr(value)
    if not name:
        raise DataError(f"{where}: empty label.")
    return name
