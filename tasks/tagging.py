"""The word-tagging toolkit shared by tasks/ner.py and tasks/srl.py: the dataset row (TaggingSpec) and its
registration, column files, sub-token label alignment, word-level predictions and the seqeval metric (the tag
schemes are tasks/tag_schemes.py).

Contracts:
  TaggingSpec: one dataset of a tagging family (folders, split files, reader, label inventory, Hub id, test splits);
      tagging_task(family, spec, load, compute_metrics, tag_column, pair_column) is its Task; register_family
      registers one per row (tasks/custom.py builds one for a tag set read from your own file).
  tokenize_and_align(batch, tokenizer, data_args, label_list, tag_column, pair_column=None): words (and, for SRL,
      the predicate word as a second segment) -> sub-tokens with labels on each word's first sub-token.
  predictions_to_records(...): one {"tokens", "tags"[, extra columns]} row per example.
  read_example(record, index, where, ...): Task.read_example (predict.py): {"tokens": [word, ...][,
      pair_column: word index]} -> the unlabelled raw row (every tag the placeholder "O"), id = str(index).
  read_column_file(path, token_col, tag_col, ...) -> list of Sentence(tokens, tags, lineno)
      Read through tasks.io.read_lines (UTF-8 with or without BOM, LF or CRLF). Blank lines and `-DOCSTART-`
      lines end a sentence; too few columns is a DataError "file:line".
  fix_empty_words(batch_words, encoding, tokenizer): the batch with words that tokenize to nothing replaced
      by the unk token (None when there are none).
  first_subtoken_labels(word_ids, sequence_ids, word_label_ids): the per-token label row (-100 except on each
      word's first sub-token), from the fast tokenizer's `word_ids()`, so it always matches the input.
  word_predictions(logits, labels, label_list): per-feature predicted tags of the words with a label position.
  gold_and_predicted(...): word-level (gold, predicted) tags per example, truncated words predicted "O".
  seqeval_scores(gold, pred): seqeval's default (conlleval) micro precision/recall/f1 + token accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import datasets
import numpy as np

from tasks.io import check_record, column, read_lines
from tasks.registry import Collator, DataError, Prediction, Schedule, Task, TrainingHints, register_specs
from tasks.task_type import TaskType

IGNORE = -100  # label of special tokens, non-first sub-tokens and padding: skipped by the loss and the metric


class Sentence(NamedTuple):
    tokens: list[str]
    tags: list[str]
    lineno: int  # line of the sentence's first token, for error messages


# ------------------------------------------------------------------------------------------------------------
# Reading


def read_column_file(
    path: str, token_col: int, tag_col: int = -1, *, sep: str | None = None, min_columns: int = 2
) -> list[Sentence]:
    """Sentences of a CoNLL-style column file (one token per line, blank line between sentences).

    `sep=None` splits on runs of whitespace (CoNLL-2003/2004 space-separated files), `sep="\\t"` on tabs
    (OntoNotes .sd.conllx). `-DOCSTART-` lines are document markers, not tokens (as the original's loaders).
    """
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for lineno, line in read_lines(path):  # BOM dropped, CRLF accepted, bad bytes named by file:line
        if not line.strip() or line.startswith("-DOCSTART-"):
            if tokens:
                sentences.append(Sentence(tokens, tags, start))
            tokens, tags = [], []
            continue
        cols = line.split(sep) if sep else line.split()
        if len(cols) < min_columns:
            kind = "tab" if sep == "\t" else "space"
            raise DataError(
                f"{path}:{lineno}: expected at least {min_columns} {kind}-separated columns, "
                f"got {len(cols)}: {line[:80]!r}."
            )
        if not tokens:
            start = lineno
        tokens.append(cols[token_col])
        tags.append(cols[tag_col].strip())
    # a file without a final blank line still yields its last sentence (the original's OntoNotes did not)
    if tokens:
        sentences.append(Sentence(tokens, tags, start))
    return sentences


def tagging_features(tag_column: str, extra: dict | None = None) -> datasets.Features:
    """The raw columns: id, tokens, `extra` (SRL's predicate index), the string tags."""
    features = {"id": datasets.Value("string"), "tokens": datasets.List(datasets.Value("string"))}
    features.update(extra or {})
    features[tag_column] = datasets.List(datasets.Value("string"))
    return datasets.Features(features)


def tagging_dataset(rows: list[dict], tag_column: str, extra: dict | None = None) -> datasets.Dataset:
    """A Dataset with string tags (label names, not ids: the id mapping lives in the Task's label_list)."""
    features = tagging_features(tag_column, extra)
    columns = {name: [row[name] for row in rows] for name in features}
    return datasets.Dataset.from_dict(columns, features=features)


def read_example(
    record: dict, index: int, where: str, *, label_list, tag_column: str, pair_column: str | None = None
) -> list[dict]:
    """One user record {"tokens": [word, ...]} (SRL adds `pair_column`, the predicate's 0-based word index) ->
    the raw row a column file gives, id = str(index), every tag the placeholder "O" (the first label if no
    "O")."""
    check_record(record, {"tokens": [str]} | ({pair_column: int} if pair_column else {}), where)
    tokens = record["tokens"]
    empty = next((k for k, token in enumerate(tokens) if not token.strip()), None)
    if not tokens or empty is not None:
        what = "field 'tokens' is an empty list" if not tokens else f"field 'tokens[{empty}]' is blank"
        raise DataError(f"{where}: {what}; expected a list of words (non-empty strings).")
    row = {"id": str(index), "tokens": list(tokens)}
    if pair_column:
        if not 0 <= record[pair_column] < len(tokens):
            raise DataError(
                f"{where}: {pair_column} {record[pair_column]} is outside the {len(tokens)} tokens "
                "(expected a 0-based word index)."
            )
        row[pair_column] = record[pair_column]
    placeholder = "O" if "O" in label_list else label_list[0]
    return [row | {tag_column: [placeholder] * len(tokens)}]


# ------------------------------------------------------------------------------------------------------------
# Tokenisation and alignment


def fix_empty_words(batch_words: list[list[str]], encoding, tokenizer) -> list[list[str]] | None:
    """Words that tokenize to nothing (e.g. a lone zero-width space for WordPiece) would get no label
    position, so predictions could not be mapped back to words. Returns the batch with those words replaced
    by the unk token, or None when every word missing from the encoding was merely truncated away."""
    fixed, changed = [], False
    for i, words in enumerate(batch_words):
        seen = {
            w
            for w, s in zip(encoding.word_ids(i), encoding.sequence_ids(i), strict=True)
            if s == 0 and w is not None
        }
        missing = [j for j in range(len(words)) if j not in seen]
        empty = set()
        if missing:
            pieces = tokenizer([words[j] for j in missing], add_special_tokens=False)["input_ids"]
            empty = {j for j, ids in zip(missing, pieces, strict=True) if not ids}
        if empty:
            changed = True
            words = [tokenizer.unk_token if j in empty else w for j, w in enumerate(words)]
        fixed.append(words)
    return fixed if changed else None


def first_subtoken_labels(word_ids, sequence_ids, word_label_ids: Sequence[int]) -> list[int]:
    """Label row for one feature: the word's label on its first sub-token of sequence 0, IGNORE elsewhere
    (specials, continuation sub-tokens, padding, a second sequence such as SRL's predicate)."""
    row, prev = [], None
    for w, s in zip(word_ids, sequence_ids, strict=True):
        if w is None or s != 0 or w == prev:
            row.append(IGNORE)
        else:
            row.append(word_label_ids[w])
        prev = w if s == 0 else None
    return row


def padding_arg(data_args) -> str | bool:
    return "max_length" if data_args.pad_to_max_length else False


def tokenize_and_align(
    batch, tokenizer, data_args, *, label_list, tag_column: str, family: str, pair_column: str | None = None
) -> dict:
    """Words -> sub-tokens truncated to --max_seq_length; `labels` = the word's label id on its first sub-token,
    -100 on the other sub-tokens, specials and padding. With `pair_column` (SRL: the predicate's word index) the
    pair (words, [that word]) is encoded with truncation="only_first", so only the sentence is ever cut, and
    token_type_ids are all 0 (one segment id, as the original's single-sequence "[SEP]" encoding had)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{family.upper()} needs a fast tokenizer (word_ids() aligns labels); load it with use_fast=True."
        )
    label_to_id = {label: i for i, label in enumerate(label_list)}
    kwargs = {
        "is_split_into_words": True,
        # cut the sentence, never the predicate segment
        "truncation": "only_first" if pair_column else True,
        "max_length": data_args.max_seq_length,
        "padding": padding_arg(data_args),
    }

    def encode(words):
        if pair_column is None:
            return tokenizer(words, **kwargs)
        return tokenizer(words, [[w[i]] for w, i in zip(words, batch[pair_column], strict=True)], **kwargs)

    words = [list(w) for w in batch["tokens"]]
    enc = encode(words)
    fixed = fix_empty_words(words, enc, tokenizer)
    if fixed is not None:
        enc = encode(fixed)
    out = {key: list(value) for key, value in enc.items()}
    if pair_column is not None and "token_type_ids" in out:
        out["token_type_ids"] = [[0] * len(row) for row in out["token_type_ids"]]
    out["labels"] = [
        first_subtoken_labels(enc.word_ids(i), enc.sequence_ids(i), [label_to_id[t] for t in tags])
        for i, tags in enumerate(batch[tag_column])
    ]
    return out


# ------------------------------------------------------------------------------------------------------------
# Predictions and metric


def word_predictions(
    predictions, labels: Sequence[Sequence[int]], label_list: Sequence[str]
) -> list[list[str]]:
    """Predicted tags of each feature's labelled positions (= the first sub-token of every word that survived
    truncation), in word order. `predictions`: logits (N, T, C) (padded with -100 by the Trainer when
    batches have different lengths) or already-argmaxed ids (N, T)."""
    if isinstance(predictions, tuple):
        predictions = predictions[0]
    predictions = np.asarray(predictions)
    ids = predictions.argmax(-1) if predictions.ndim == 3 else predictions
    out = []
    for row, gold in zip(ids, labels, strict=True):
        if len(row) < len(gold):
            raise ValueError(f"predictions of length {len(row)} for a feature of {len(gold)} tokens.")
        out.append([label_list[int(p)] for p, g in zip(row[: len(gold)], gold, strict=True) if g != IGNORE])
    return out


def align_to_words(pred_words: list[list[str]], gold: list[list[str]]) -> list[list[str]]:
    """Pad each sentence's predictions to its full length with "O": words cut by --max_seq_length count as
    predicted O, so truncation can lower the score but never hides gold entities."""
    if len(pred_words) != len(gold):
        raise ValueError(
            f"{len(pred_words)} features but {len(gold)} examples: features must map 1:1 to examples."
        )
    out = []
    for pred, tags in zip(pred_words, gold, strict=True):
        if len(pred) > len(tags):
            raise ValueError("more labelled positions than words: features and examples are out of order.")
        out.append(pred + ["O"] * (len(tags) - len(pred)))
    return out


def gold_from_labels(labels: Sequence[Sequence[int]], label_list: Sequence[str]) -> list[list[str]]:
    return [[label_list[g] for g in row if g != IGNORE] for row in labels]


def gold_and_predicted(predictions, features, examples, label_list, tag_column: str):
    """(gold, predicted) word-level tags, one list per example. Gold is the whole sentence from `examples`
    (its `tag_column`) when given, else only the words the labels kept; features must map 1:1 to examples."""
    labels = column(features, "labels")
    pred = word_predictions(predictions, labels, label_list)
    if examples is None:
        return gold_from_labels(labels, label_list), pred
    gold = column(examples, tag_column)
    return gold, align_to_words(pred, gold)


def seqeval_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """seqeval in its default (conlleval-compatible) mode: chunk-level micro precision/recall/f1 (the HF
    `seqeval` metric's overall_*), plus token accuracy, as the original tasks/ner/dataset.py reported."""
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {
        "precision": float(precision_score(gold, pred, zero_division=0)),
        "recall": float(recall_score(gold, pred, zero_division=0)),
        "f1": float(f1_score(gold, pred, zero_division=0)),
        "accuracy": float(accuracy_score(gold, pred)),
    }


def predictions_to_records(
    predictions, features, examples, data_args, *, label_list, tag_column: str, extra_columns=()
) -> list[dict]:
    """One {"tokens", "tags", *extra_columns} row per example: the predicted tags, "O" for words cut by truncation
    (SRL adds its predicate "index", V included)."""
    _, pred = gold_and_predicted(predictions, features, examples, label_list, tag_column)
    extra = [column(examples, name) for name in extra_columns]
    rows = []
    for k, (tokens, tags) in enumerate(zip(column(examples, "tokens"), pred, strict=True)):
        row = {"tokens": list(tokens), "tags": tags}
        row.update({name: int(values[k]) for name, values in zip(extra_columns, extra, strict=True)})
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------------------
# Dataset rows and their registration


@dataclass(frozen=True)
class TaggingSpec:
    """One dataset of a word-tagging family (NER, SRL): one row in that family's SPECS."""

    name: str  # --dataset_name
    subdirs: tuple[str, ...]  # folders under --data_dir tried in order ("" = --data_dir itself)
    layout: dict[str, tuple[str, ...]]  # split -> official file name(s), first match wins
    label_list: tuple[str, ...]  # the tag inventory, in the original's order (fixes the head size)
    read: Callable | None = None  # read(path, label_list) -> rows {"tokens", <tags>, ...}; None: the family's
    hub_id: str | None = None  # Hub copy used when no local file is given (None: local data only)
    test_splits: tuple[str, ...] = ("test",)


def tagging_task(
    family: str,
    spec: TaggingSpec,
    *,
    load: Callable,
    compute_metrics: Callable,
    tag_column: str,
    pair_column: str | None = None,
    extra_features: dict | None = None,
) -> Task:
    """The Task of one spec: load(data_args, splits, spec=...), compute_metrics(..., label_list=...), the shared
    tokenize_and_align / predictions_to_records / read_example, the original's x0.95/epoch schedule.
    `extra_features`: the types of the columns `load` adds to id/tokens/tags (SRL's index)."""
    labels = spec.label_list
    return Task(
        family=family,
        name=spec.name,
        task_type=TaskType.TOKEN_CLASSIFICATION,
        load=partial(load, spec=spec),
        preprocess=partial(
            tokenize_and_align,
            label_list=labels,
            tag_column=tag_column,
            family=family,
            pair_column=pair_column,
        ),
        compute_metrics=partial(compute_metrics, label_list=labels),
        main_metric="f1",
        label_list=labels,
        test_splits=spec.test_splits,
        predictions_to_records=partial(
            predictions_to_records,
            label_list=labels,
            tag_column=tag_column,
            extra_columns=(pair_column,) if pair_column else (),
        ),
        hub_id=spec.hub_id,
        hints=TrainingHints(
            schedule=Schedule.EXPONENTIAL, collator=Collator.TOKEN_CLASSIFICATION, pretokenized=True
        ),
        prediction=Prediction(
            partial(read_example, label_list=labels, tag_column=tag_column, pair_column=pair_column),
            key="tags",
            raw_features=tagging_features(tag_column, extra_features),
        ),
    )


def register_family(family: str, specs: Sequence[TaggingSpec], **kwargs) -> dict[str, Task]:
    """One Task per spec (`tagging_task(family, spec, **kwargs)`), registered; returns {name: Task}."""
    return register_specs(specs, partial(tagging_task, family, **kwargs))
