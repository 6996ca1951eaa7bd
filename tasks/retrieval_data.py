"""Retrieval data (PT-Retrieval, docs: /work/shared/PT-RETRIEVAL.md §3.1, §4.2): the two layouts users have.

BEIR folder (zero-shot evaluation), as unzipped from the BEIR server:
    <folder>/corpus.jsonl          {"_id", "title", "text"} per line ("title" may be missing or null: "")
    <folder>/queries.jsonl         {"_id", "text"} per line
    <folder>/qrels/<split>.tsv     header "query-id<TAB>corpus-id<TAB>score", then one graded judgement per line
`load_beir(folder, split)` -> RetrievalSplit; `eval_split(folder)` -> the split PT-Retrieval evaluates.

DPR retriever JSON (training; the original's data/retriever/*-train.json): one list of
    {"question", "answers": [str], "positive_ctxs": [ctx], "negative_ctxs": [ctx], "hard_negative_ctxs": [ctx]}
    ctx = {"title", "text", ...}   (the ids "passage_id"/"psg_id" and the BM25 scores are not used)
`load_dpr(paths_or_globs)` -> list[DprExample].

Every file goes through tasks.io's reader (UTF-8 with or without BOM, LF or CRLF). Bad data is a one-line
DataError naming the file and line (BEIR) or the file and 0-based example index (DPR, one JSON document).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from tasks.io import read_json, read_jsonl, read_lines, require_examples
from tasks.registry import DataError

logger = logging.getLogger(__name__)

BEIR_SPLITS = ("train", "dev", "test")
QRELS_HEADER = "query-id\tcorpus-id\tscore"
BEIR_LAYOUT = (
    "corpus.jsonl, queries.jsonl and qrels/{train,dev,test}.tsv (the BEIR layout, as unzipped from the BEIR "
    "server)"
)
DPR_LAYOUT = (
    '[{"question", "answers", "positive_ctxs": [{"title", "text"}], "negative_ctxs": [...], '
    '"hard_negative_ctxs": [...]}]'
)
DPR_POOLS = ("positive_ctxs", "negative_ctxs", "hard_negative_ctxs")


# ---------------------------------------------------------------------------------------------------------------
# BEIR
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievalSplit:
    """One BEIR split. corpus: {passage id: (title, text)}, every passage of corpus.jsonl in file order;
    queries: {query id: text}, only the queries judged in this split, in qrels order (as BEIR's loader);
    qrels: {query id: {passage id: grade}}, graded relevance, grade > 0 relevant (0 or below: judged
    non-relevant, kept for nDCG as pytrec_eval reads them)."""

    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def eval_split(folder: str) -> str:
    """The qrels split PT-Retrieval evaluates a BEIR folder on (evaluate_on_beir.sh): "dev" for MS MARCO (a folder
    named msmarco; its test.tsv is the 43 TREC-DL queries), "test" for every other dataset, also those that ship
    a dev.tsv (nfcorpus, hotpotqa, fiqa, quora, dbpedia-entity, fever: the BEIR paper's numbers are on test).
    A folder with qrels/dev.tsv and no qrels/test.tsv gives "dev"."""

    def has(split: str) -> bool:
        return os.path.isfile(os.path.join(folder, "qrels", f"{split}.tsv"))

    if os.path.basename(os.path.normpath(folder)).lower() == "msmarco" and has("dev"):
        return "dev"
    return "dev" if has("dev") and not has("test") else "test"


def _require_file(folder: str, relative: str) -> str:
    """The path of `relative` under a BEIR folder, or a DataError naming the expected layout (and, for a folder of
    BEIR folders such as cqadupstack/, the sub-folders to pass instead)."""
    path = os.path.join(folder, relative)
    if os.path.isfile(path):
        return path
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: no such folder; expected a BEIR folder holding {BEIR_LAYOUT}.")
    hint = ""
    subfolders = sorted(
        name for name in os.listdir(folder) if os.path.isfile(os.path.join(folder, name, "corpus.jsonl"))
    )
    if subfolders:  # CQADupStack unzips into one BEIR folder per forum, evaluated one by one
        hint = f"; this folder holds BEIR folders ({', '.join(subfolders)}): pass one of them"
    raise DataError(f"{path}: no such file; expected {BEIR_LAYOUT}{hint}.")


def _record_id(row: dict, where: str) -> str:
    value = row.get("_id")
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise DataError(f"{where}: '_id' must be a non-empty string, got {value!r}.")
    return str(value)  # BEIR ids are strings; an integer id is matched against the qrels' text


def _text(row: dict, key: str, where: str, optional: bool = False) -> str:
    value = row.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {value!r}.")
    return value


def _read_records(path: str, fields: Sequence[str], title: bool) -> dict[str, tuple[str, str] | str]:
    """{_id: text} (queries) or {_id: (title, text)} (corpus, title=True) of a BEIR jsonl file."""
    records = {}  # no first-line table: MS MARCO has 8.8 M passages
    for lineno, row in read_jsonl(path):
        where = f"{path}:{lineno}"
        key = _record_id(row, where)
        if key in records:
            raise DataError(f"{where}: duplicate _id {key!r}.")
        text = _text(row, "text", where)
        records[key] = (_text(row, "title", where, optional=True), text) if title else text
    return require_examples(records, path, f"one JSON object per line with {', '.join(fields)}")


def load_beir(folder: str, split: str, *, keep_missing_passages: bool = False) -> RetrievalSplit:
    """Read one split of a BEIR folder (layout in the module docstring) into a RetrievalSplit.

    DataError, one line, file:line where there is a line: a missing file or folder (naming the layout), a line
    that is not a JSON object or a qrels line that is not `query-id<TAB>corpus-id<TAB>integer`, a missing or
    wrong header, a duplicate _id in corpus/queries or a duplicate (query, passage) pair in the qrels, a qrels
    line naming a query absent from queries.jsonl or a passage absent from corpus.jsonl, and a query with no
    relevant passage (grade > 0) in the split.

    keep_missing_passages: keep qrels lines whose passage is not in the corpus (one warning line with the count)
    instead of refusing. BEIR's loader keeps them: they count as relevant passages no system can retrieve, which
    is what its published nDCG includes (ArguAna's test qrels name a passage its corpus lacks, beir issue #101).
    """
    if split not in BEIR_SPLITS:
        raise ValueError(f"unknown BEIR split {split!r}; choose one of: {', '.join(BEIR_SPLITS)}")
    corpus_path = _require_file(folder, "corpus.jsonl")
    queries_path = _require_file(folder, "queries.jsonl")
    qrels_path = _require_file(folder, os.path.join("qrels", f"{split}.tsv"))
    corpus = _read_records(corpus_path, ("_id", "title", "text"), title=True)
    all_queries = _read_records(queries_path, ("_id", "text"), title=False)

    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    missing = []  # (line, passage id) of judgements naming a passage the corpus lacks
    lines = read_lines(qrels_path)
    header = next(lines, (1, ""))[1]
    if header != QRELS_HEADER:
        raise DataError(
            f"{qrels_path}:1: expected the header {QRELS_HEADER!r} (tab-separated), got {header[:80]!r}."
        )
    for lineno, line in lines:
        if not line.strip():
            continue
        where = f"{qrels_path}:{lineno}"
        fields = line.split("\t")
        try:
            if len(fields) != 3 or not fields[0] or not fields[1]:
                raise ValueError
            qid, pid, grade = fields[0], fields[1], int(fields[2])
        except ValueError:
            raise DataError(
                f"{where}: expected query-id<TAB>corpus-id<TAB>integer score, got {line[:80]!r}."
            ) from None
        if qid not in all_queries:
            raise DataError(f"{where}: query id {qid!r} is not in {queries_path}.")
        if pid not in corpus:
            if not keep_missing_passages:
                raise DataError(
                    f"{where}: passage id {pid!r} is not in {corpus_path} (load with "
                    "keep_missing_passages=True to keep it as an unretrievable relevant passage, as BEIR does)."
                )
            missing.append((lineno, pid))
        if (qid, pid) in first_line:
            raise DataError(
                f"{where}: duplicate judgement of query {qid!r} and passage {pid!r} "
                f"(first at line {first_line[qid, pid]})."
            )
        first_line[qid, pid] = lineno
        qrels.setdefault(qid, {})[pid] = grade
    require_examples(qrels, qrels_path, f"judgements after the header {QRELS_HEADER!r}")
    for qid, grades in qrels.items():
        if not any(grade > 0 for grade in grades.values()):
            line = min(first_line[qid, pid] for pid in grades)
            raise DataError(
                f"{qrels_path}:{line}: query {qid!r} has no relevant passage (score > 0) in this split."
            )
    if missing:
        logger.warning(
            "%s: kept %d judgement(s) of passages not in %s (first: line %d, %r); they count as relevant "
            "passages that cannot be retrieved, as in BEIR.",
            qrels_path,
            len(missing),
            corpus_path,
            *missing[0],
        )
    queries = {qid: all_queries[qid] for qid in qrels}
    return RetrievalSplit(corpus=corpus, queries=queries, qrels=qrels)


# ---------------------------------------------------------------------------------------------------------------
# DPR retriever JSON
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DprExample:
    """One training question. Passages are (title, text); pools keep the file's order (the original takes the
    first positive, and shuffles the negative pools itself). source: the file it came from (the original
    upsamples WebQ/TREC files x4 by file path)."""

    question: str
    answers: tuple[str, ...]
    positives: tuple[tuple[str, str], ...]
    negatives: tuple[tuple[str, str], ...]
    hard_negatives: tuple[tuple[str, str], ...]
    source: str = ""


def expand_paths(paths_or_globs: str | Sequence[str]) -> list[str]:
    """Files of one pattern or a list of them: each pattern's matches sorted (the original's glob order is the
    file system's), patterns in the order given, a file named twice kept once. A pattern that matches nothing is
    a DataError naming it."""
    patterns = [paths_or_globs] if isinstance(paths_or_globs, str) else list(paths_or_globs)
    if not patterns:
        raise DataError("no DPR retriever file given; expected files such as data/retriever/nq-train.json.")
    files: dict[str, None] = {}
    for pattern in patterns:
        matches = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
        if not matches:
            raise DataError(
                f"{pattern}: no file matches; expected DPR retriever JSON files such as "
                "data/retriever/nq-train.json."
            )
        files.update(dict.fromkeys(matches))
    return list(files)


def _passages(example: dict, pool: str, where: str) -> tuple[tuple[str, str], ...]:
    ctxs = example[pool]
    if not isinstance(ctxs, list):
        raise DataError(f"{where}: field {pool!r} must be a list of {{'title', 'text'}}, got {ctxs!r:.80}.")
    out = []
    for k, ctx in enumerate(ctxs):
        if not isinstance(ctx, dict):
            raise DataError(f"{where}: {pool}[{k}] must be an object {{'title', 'text'}}, got {ctx!r:.80}.")
        title, text = ctx.get("title"), ctx.get("text")
        if not isinstance(title, str) or not isinstance(text, str):
            bad = "title" if not isinstance(title, str) else "text"
            raise DataError(
                f"{where}: {pool}[{k}].{bad} must be a string, got {ctx.get(bad)!r:.80}; "
                f"expected {{'title', 'text'}}."
            )
        out.append((title, text))
    return tuple(out)


def _read_dpr_file(path: str) -> list[DprExample]:
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of questions {DPR_LAYOUT}, got {type(data).__name__}.")
    examples = []
    for index, item in enumerate(data):
        where = f"{path}: example {index}"
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected an object {DPR_LAYOUT[1:-1]}, got {type(item).__name__}.")
        missing = [key for key in ("question", "answers", *DPR_POOLS) if key not in item]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}; expected {DPR_LAYOUT[1:-1]}.")
        question, answers = item["question"], item["answers"]
        if not isinstance(question, str):
            raise DataError(f"{where}: field 'question' must be a string, got {question!r:.80}.")
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise DataError(f"{where}: field 'answers' must be a list of strings, got {answers!r:.80}.")
        positives, negatives, hard = (_passages(item, pool, where) for pool in DPR_POOLS)
        examples.append(DprExample(question, tuple(answers), positives, negatives, hard, source=path))
    return require_examples(examples, path, f"a JSON list of questions {DPR_LAYOUT}")


def load_dpr(paths_or_globs: str | Sequence[str], *, skip_without_positive: bool = False) -> list[DprExample]:
    """Every question of the DPR retriever JSON files the patterns name (expand_paths), file by file.

    A question with an empty positive_ctxs is refused: DataError "<file>: example <index>: no positive passage;
    <n> of <total> questions in this file have none ...". The original (train_dense_encoder.py) drops such
    questions silently; skip_without_positive=True drops them too, with one warning line giving the count per
    file. A file that is not a list of questions in the layout above, a field of the wrong type, or no question
    left at all is a DataError naming the file (and the example's 0-based index).
    """
    examples, dropped = [], {}
    paths = expand_paths(paths_or_globs)
    for path in paths:
        read = _read_dpr_file(path)
        without = [index for index, example in enumerate(read) if not example.positives]
        if without and not skip_without_positive:
            raise DataError(
                f"{path}: example {without[0]}: no positive passage (positive_ctxs is empty); {len(without)} "
                f"of {len(read)} questions in this file have none (load with skip_without_positive=True to "
                "drop them, as the original does)."
            )
        if without:
            dropped[path] = len(without)
        examples += [example for example in read if example.positives]
    if dropped:
        logger.warning(
            "dropped %d DPR question(s) without a positive passage, as the original does (%s).",
            sum(dropped.values()),
            ", ".join(f"{path}: {n}" for path, n in dropped.items()),
        )
    return require_examples(examples, ", ".join(paths), "a question with a positive passage")
