"""Small data sets in the OFFICIAL file formats, written by tests (never copied from real data), and the skip
guard of the tests that read the real files in ../shared/data."""

from __future__ import annotations

import json
import os

import pytest

REAL_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")


def needs_real(*files: str):
    """Skip unless every one of `files` (paths under ../shared/data) exists: the exact files a real-data test
    reads, so a partial copy of shared/data skips that test instead of failing it."""
    missing = [f for f in files if not os.path.isfile(os.path.join(REAL_DATA, f))]
    return pytest.mark.skipif(
        bool(missing), reason=f"real data not found: {', '.join(missing)} under {REAL_DATA}"
    )


SENTENCES = [
    ("A man is playing a guitar.", "A man plays an instrument."),
    ("The cat sat on the mat.", "A dog is barking loudly."),
    ("Paris is the capital of France.", "France has a capital city."),
    ("Dana Reeve died of lung cancer.", "Dana Reeve is alive and well."),
    ("The quick brown fox jumps.", "An animal is jumping."),
    ("EU rejects German call to boycott lamb.", "Germany supports British lamb."),
]


def _write(path: str, lines: list[str]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def superglue_rte(root: str, n_train: int = 12, n_val: int = 6, n_test: int = 4) -> str:
    labels = ["entailment", "not_entailment"]

    def rows(n, labelled):
        out = []
        for i in range(n):
            p, h = SENTENCES[i % len(SENTENCES)]
            row = {"premise": p, "hypothesis": h, "idx": i}
            if labelled:
                row["label"] = labels[i % 2]
            out.append(json.dumps(row))
        return out

    _write(os.path.join(root, "RTE", "train.jsonl"), rows(n_train, True))
    _write(os.path.join(root, "RTE", "val.jsonl"), rows(n_val, True))
    _write(os.path.join(root, "RTE", "test.jsonl"), rows(n_test, False))
    return root


def glue_stsb(root: str, n_train: int = 12, n_dev: int = 6) -> str:
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"

    def rows(n):
        return [header] + [
            f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{SENTENCES[i % 6][0]}\t{SENTENCES[i % 6][1]}"
            f"\t{(i * 0.7) % 5:.3f}"
            for i in range(n)
        ]

    _write(os.path.join(root, "STS-B", "train.tsv"), rows(n_train))
    _write(os.path.join(root, "STS-B", "dev.tsv"), rows(n_dev))
    return root


CONLL03_SENTENCES = [
    [
        ("EU", "B-ORG"),
        ("rejects", "O"),
        ("German", "B-MISC"),
        ("call", "O"),
        ("to", "O"),
        ("boycott", "O"),
        ("British", "B-MISC"),
        ("lamb", "O"),
        (".", "O"),
    ],
    [("Peter", "B-PER"), ("Blackburn", "I-PER")],
    [("BRUSSELS", "B-LOC"), ("1996-08-22", "O")],
    [
        ("The", "O"),
        ("European", "B-ORG"),
        ("Commission", "I-ORG"),
        ("said", "O"),
        ("on", "O"),
        ("Thursday", "O"),
    ],
]


def conll2003(root: str, copies: int = 3) -> str:
    def lines():
        out = ["-DOCSTART- -X- -X- O", ""]
        for _ in range(copies):
            for sentence in CONLL03_SENTENCES:
                out += [f"{tok} NNP B-NP {tag}" for tok, tag in sentence] + [""]
        return out

    for split in ("train", "valid", "test"):
        _write(os.path.join(root, f"{split}.txt"), lines())
    return root


def conll2005(root: str, copies: int = 3) -> str:
    # predicate index is the 0-based word position of the B-V tag
    base = [
        "2 The cat sat on the mat . ||| B-A0 I-A0 B-V B-AM-LOC I-AM-LOC I-AM-LOC O",
        "1 He gave her a book yesterday ||| B-A0 B-V B-A2 B-A1 I-A1 B-AM-TMP",
    ]
    for name in ("train", "devel", "test.wsj", "test.brown"):
        _write(os.path.join(root, f"conll05.{name}.txt"), base * copies)
    return root


def ontonotes(root: str, copies: int = 2) -> str:
    """OntoNotes .sd.conllx: TAB-separated, token in column 2, tag last."""
    base = [
        "1\tObama\t_\tNNP\t_\t_\tB-PERSON",
        "2\tvisited\t_\tVBD\t_\t_\tO",
        "3\tParis\t_\tNNP\t_\t_\tB-GPE",
        "",
        "1\tToday\t_\tNN\t_\t_\tB-DATE",
        "2\trains\t_\tVBZ\t_\t_\tO",
        "",
    ]
    for split in ("train", "dev", "test"):
        _write(os.path.join(root, f"{split}.sd.conllx"), base * copies)
    return root


def conll04_json(root: str) -> str:
    """SpERT/TablERT CoNLL04 JSON with BILOU tags, pretty-printed (one value per line)."""
    sentences = [
        {
            "tokens": ["John", "Smith", "lives", "in", "Boston"],
            "tags": ["B-Peop", "L-Peop", "O", "O", "U-Loc"],
        },
        {"tokens": ["IBM", "hired", "him"], "tags": ["U-Org", "O", "O"]},
    ]
    for split in ("train", "dev", "test"):
        path = os.path.join(root, f"conll04_{split}.json")
        os.makedirs(root, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(sentences, f, indent=1)
    return root


def squad(root: str, n: int = 6, indent: int | None = None) -> str:
    context = "Paris is the capital and largest city of France. It lies on the Seine."

    def payload(count):
        qas = []
        for i in range(count):
            question, answer = [
                ("What is the capital of France?", "Paris"),
                ("Which river is Paris on?", "the Seine"),
            ][i % 2]
            qas.append(
                {
                    "id": f"q{i}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": context.index(answer)}],
                }
            )
        return {
            "version": "1.1",
            "data": [{"title": "Paris", "paragraphs": [{"context": context, "qas": qas}]}],
        }

    os.makedirs(root, exist_ok=True)
    for name, count in (("train-v1.1.json", n), ("dev-v1.1.json", n // 2)):
        with open(os.path.join(root, name), "w") as f:
            json.dump(payload(count), f, indent=indent)
    return root
