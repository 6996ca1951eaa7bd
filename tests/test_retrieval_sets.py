"""benchmarks/retrieval_sets.py: the BEIR-layout retrieval sets built from tiny files in the official layouts
(SuperGLUE jsonl, GLUE MRPC tsv with its BOM and header, as tests/fixtures.py writes them), then the real files."""

import json
import os

import pytest

from benchmarks import retrieval_sets
from benchmarks.retrieval_sets import build_all
from fixtures import REAL_DATA, needs_real

HEADER = "query-id\tcorpus-id\tscore"


def _jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(row) + "\n" for row in rows))


def boolq_files(root, n_passages=10, with_test=True):
    """val: passage i has question i; passage 0 also has question "extra" (a duplicate passage text, one id);
    test (unlabelled, idx restarts at 0): question "test i" on passage n+i, and val's pair "question 1" -> passage 1
    again."""
    val = [
        {"question": f"question {i}", "passage": f"Title {i} -- Text {i}.", "idx": i, "label": i % 2 == 0}
        for i in range(n_passages)
    ]
    val.append({"question": "extra", "passage": "Title 0 -- Text 0.", "idx": n_passages, "label": True})
    _jsonl(os.path.join(root, "superglue", "BoolQ", "val.jsonl"), val)
    if with_test:
        test = [{"passage": f"Title {n_passages + i} -- Text {n_passages + i}.", "question": f"test {i}", "idx": i}
                for i in range(2)]  # fmt: skip
        test.append({"passage": "Title 1 -- Text 1.", "question": "question 1", "idx": 2})
        _jsonl(os.path.join(root, "superglue", "BoolQ", "test.jsonl"), test)


def rte_files(root):
    rows = [
        ("P one.", "H one.", "entailment"),
        ("P one.", "H two.", "not_entailment"),  # the premise again: one passage; not a query
        ("P two.", "H one.", "entailment"),  # H one. again: one query with two relevant premises
        ("P three.", "H three.", "not_entailment"),  # a distractor premise
        (" P four. ", "H four.", "entailment"),  # white space stripped
    ]
    _jsonl(os.path.join(root, "superglue", "RTE", "val.jsonl"),
           [{"premise": p, "hypothesis": h, "label": y, "idx": i} for i, (p, h, y) in enumerate(rows)])  # fmt: skip


def mrpc_files(root):
    lines = [
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
        '1\t11\t12\tHe said "pie" sells.\t"The pie sells.',
        "0\t21\t22\tA b.\tC d.",
        "1\t31\t32\tC d.\tC, d!",  # its #1 String is also a passage (row 2): relevant too
        '1\t41\t12\tThe pie sells, he said.\t"The pie sells.',
    ]
    os.makedirs(os.path.join(root, "glue", "MRPC"), exist_ok=True)
    with open(os.path.join(root, "glue", "MRPC", "dev.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def multirc_files(root):
    def record(idx, text, questions, start):
        answers = [{"text": "yes", "idx": 0, "label": 1}]
        qs = [{"question": q, "answers": answers, "idx": start + i} for i, q in enumerate(questions)]
        return {"idx": idx, "version": 1.1, "passage": {"text": text, "questions": qs}}

    _jsonl(os.path.join(root, "superglue", "MultiRC", "val.jsonl"),
           [record(0, "First paragraph. ", ["Why one?", "How one?"], 0), record(1, "Second paragraph.", ["Why two?"], 2)])  # fmt: skip


def all_files(root, **boolq):
    boolq_files(root, **boolq)
    rte_files(root)
    mrpc_files(root)
    multirc_files(root)
    return root


def read(out, name):
    folder = out / name
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    qrels = {}
    for path in sorted((folder / "qrels").iterdir()):
        lines = path.read_text().splitlines()
        assert lines[0] == HEADER
        qrels[path.stem] = [tuple(line.split("\t")) for line in lines[1:]]
    return corpus, queries, qrels


def test_out_of_domain_sets_are_exact(tmp_path):
    sizes = build_all(all_files(tmp_path / "data"), tmp_path / "out")
    corpus, queries, qrels = read(tmp_path / "out", "rte")
    assert corpus == [{"_id": "d0", "title": "", "text": "P one."}, {"_id": "d1", "title": "", "text": "P two."},
                      {"_id": "d2", "title": "", "text": "P three."}, {"_id": "d3", "title": "", "text": "P four."}]  # fmt: skip
    assert queries == [{"_id": "q0", "text": "H one."}, {"_id": "q1", "text": "H four."}]
    assert qrels == {"test": [("q0", "d0", "1"), ("q0", "d1", "1"), ("q1", "d3", "1")]}

    corpus, queries, qrels = read(tmp_path / "out", "mrpc")
    assert corpus == [{"_id": "d0", "title": "", "text": '"The pie sells.'}, {"_id": "d1", "title": "", "text": "C d."},
                      {"_id": "d2", "title": "", "text": "C, d!"}]  # fmt: skip
    assert queries == [{"_id": "q0", "text": 'He said "pie" sells.'}, {"_id": "q1", "text": "C d."},
                       {"_id": "q2", "text": "The pie sells, he said."}]  # fmt: skip
    assert qrels == {"test": [("q0", "d0", "1"), ("q1", "d2", "1"), ("q1", "d1", "1"), ("q2", "d0", "1")]}

    corpus, queries, qrels = read(tmp_path / "out", "multirc")
    assert corpus == [{"_id": "d0", "title": "", "text": "First paragraph."},
                      {"_id": "d1", "title": "", "text": "Second paragraph."}]  # fmt: skip
    assert [q["text"] for q in queries] == ["Why one?", "How one?", "Why two?"]
    assert qrels == {"test": [("q0", "d0", "1"), ("q1", "d0", "1"), ("q2", "d1", "1")]}

    assert {k: v for k, v in sizes.items() if k != "boolq"} == {
        "rte": {"queries": 2, "passages": 4, "qrels": 3},
        "mrpc": {"queries": 3, "passages": 3, "qrels": 4},
        "multirc": {"queries": 3, "passages": 2, "qrels": 3},
    }


def test_boolq_is_split_by_passage(tmp_path):
    sizes = build_all(all_files(tmp_path / "data"), tmp_path / "out")
    corpus, queries, qrels = read(tmp_path / "out", "boolq")
    # one corpus of every passage (val's 10, then test's 2 new ones), the title before " -- "
    assert corpus == [{"_id": f"d{i}", "title": f"Title {i}", "text": f"Text {i}."} for i in range(12)]
    assert [q["text"] for q in queries] == [f"question {i}" for i in range(10)] + [
        "extra",
        "test 0",
        "test 1",
    ]
    assert sizes["boolq"] == {"queries": 13, "passages": 12, "qrels": 13}  # question 1 -> d1 is written once

    pairs = sorted(pair for split in qrels.values() for pair in split)
    expected = [(f"q{i}", f"d{i}", "1") for i in range(10)] + [("q10", "d0", "1"), ("q11", "d10", "1"),
                                                                  ("q12", "d11", "1")]  # fmt: skip
    assert pairs == sorted(expected)
    split_of = {}
    for split, rows in qrels.items():
        for q, d, _ in rows:
            assert split_of.setdefault(d, split) == split, f"passage {d} in two splits"
            assert split_of.setdefault(q, split) == split, f"query {q} in two splits"
    assert split_of["q10"] == split_of["d0"]  # the duplicate passage text's second question follows it
    passages = {split: len({d for _, d, _ in rows}) for split, rows in qrels.items()}
    assert passages == {"train": 7, "dev": 3, "test": 2}  # 12 x 60/20/20: round(7.2) = 7, round(9.6) = 10


def test_a_question_with_two_passages_keeps_both_in_one_split(tmp_path):
    root = tmp_path / "data"
    rows = [{"question": f"q{i}", "passage": f"T -- P{i}.", "idx": i, "label": True} for i in range(20)]
    rows += [
        {"question": f"q{i}", "passage": f"T -- P{i + 1}.", "idx": 20 + i, "label": True} for i in (0, 5, 6)
    ]
    _jsonl(os.path.join(root, "superglue", "BoolQ", "val.jsonl"), rows)
    rs = retrieval_sets.boolq(str(root))
    split_of = {d: split for split, pairs in rs.qrels.items() for _, d in pairs}
    assert len(split_of) == 20  # every passage in exactly one split
    assert split_of["d0"] == split_of["d1"] and split_of["d5"] == split_of["d6"] == split_of["d7"]
    queries = [q for pairs in rs.qrels.values() for q in {q for q, _ in pairs}]
    assert len(queries) == len(set(queries)) == 20


def test_boolq_test_file_is_optional_and_recorded(tmp_path):
    build_all(all_files(tmp_path / "data", with_test=False), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "boolq" / "manifest.json").read_text())
    assert list(manifest["sources"]) == ["superglue/BoolQ/val.jsonl"]
    assert manifest["passages"] == 10 and manifest["queries"] == 11


def _snapshot(out):
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_deterministic_and_idempotent(tmp_path, capsys):
    data = all_files(tmp_path / "data")
    build_all(data, tmp_path / "a")
    build_all(data, tmp_path / "b")
    a, b = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    assert {k: v[0] for k, v in a.items()} == {k: v[0] for k, v in b.items()}  # the same bytes
    assert "boolq/qrels/train.tsv" in a and not any(k.endswith(".tmp") for k in a)

    build_all(data, tmp_path / "a")  # same content: nothing is written again
    assert _snapshot(tmp_path / "a") == a

    (tmp_path / "a" / "rte" / "corpus.jsonl").write_text("tampered\n")  # files no longer match: rewritten
    (tmp_path / "a" / "rte" / "qrels" / "train.tsv").write_text(HEADER + "\n")  # a stale split: removed
    retrieval_sets.main(["--data", str(data), "--out", str(tmp_path / "a")])
    again = _snapshot(tmp_path / "a")
    assert {k: v[0] for k, v in again.items()} == {k: v[0] for k, v in a.items()}
    assert again["mrpc/corpus.jsonl"][1] == a["mrpc/corpus.jsonl"][1]  # untouched set: not rewritten
    out = capsys.readouterr().out
    assert "rte      queries     2  passages     4  qrels     3  [test: 2 q / 3 p / 3 qrels]  written" in out
    assert (
        "mrpc     queries     3  passages     3  qrels     4  [test: 3 q / 3 p / 4 qrels]  unchanged" in out
    )


def test_a_missing_source_file_is_named(tmp_path):
    rte_files(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match="superglue/BoolQ/val.jsonl not found"):
        build_all(tmp_path / "data", tmp_path / "out")


@needs_real(*retrieval_sets.BOOLQ, retrieval_sets.RTE, retrieval_sets.MRPC, retrieval_sets.MULTIRC)
def test_sizes_on_the_real_files(tmp_path, capsys):
    """Observed 2026-12-05 and checked by hand: BoolQ 3270 val + 3245 test records, every question distinct,
    5483 distinct passages, split 3290/1096/1097 passages; RTE val 146 entailment pairs, 143 distinct hypotheses,
    274 distinct premises; MRPC dev 279 paraphrase pairs, 403 distinct #2 Strings, 3 queries also found verbatim
    among them; MultiRC val 83 paragraphs, 953 questions."""
    assert retrieval_sets.main(["--data", REAL_DATA, "--out", str(tmp_path)]) == 0
    print(capsys.readouterr().out)
    assert build_all(REAL_DATA, tmp_path) == {
        "boolq": {"queries": 6515, "passages": 5483, "qrels": 6515},
        "rte": {"queries": 143, "passages": 274, "qrels": 146},
        "mrpc": {"queries": 279, "passages": 403, "qrels": 282},
        "multirc": {"queries": 953, "passages": 83, "qrels": 953},
    }
    splits = json.loads((tmp_path / "boolq" / "manifest.json").read_text())["splits"]
    assert splits == {
        "train": {"queries": 3934, "passages": 3290, "qrels": 3934},
        "dev": {"queries": 1283, "passages": 1096, "qrels": 1283},
        "test": {"queries": 1298, "passages": 1097, "qrels": 1298},
    }
