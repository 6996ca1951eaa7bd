"""The retrieval sets of the PT-Retrieval benchmark, built from the official files under $SHARED_DATA
(benchmarks/paths.py) and written in BEIR layout, one folder per set:

    python -m benchmarks.retrieval_sets                   # writes benchmarks/runs/retrieval_sets/<set>/
    python -m benchmarks.retrieval_sets --out DIR [--data DIR]

    <set>/corpus.jsonl       {"_id", "title", "text"} per passage
    <set>/queries.jsonl      {"_id", "text"} per query
    <set>/qrels/<split>.tsv  header `query-id<TAB>corpus-id<TAB>score`, then one row per relevant pair (score 1)
    <set>/manifest.json      sizes, per-split sizes, the source files' sha256, the fingerprint of the files above

The sets (every one from a labelled held-out split of the original task, or from files with no labels needed):
  boolq    in domain: question -> its passage, from BoolQ val.jsonl plus test.jsonl when present (the test file
           has no labels, and a question's passage needs none). Split BY PASSAGE into train/dev/test 60/20/20
           (seeded shuffle), so no passage, and no query, is in two splits; one corpus holds every passage.
           A passage "Title -- text" gives the title before the first " -- " and the text after it.
  rte      zero-shot, test qrels only: SuperGLUE RTE val.jsonl; a query is the hypothesis of an ENTAILMENT pair
           and its relevant passage is its own premise. The corpus holds every premise of the file, so the
           premises of not_entailment pairs stay in as distractors; their hypotheses are not queries (a
           not_entailed hypothesis may contradict its premise, which would make the pair no answer).
  mrpc     zero-shot, test qrels only: GLUE MRPC dev.tsv; a query is #1 String of a paraphrase pair (Quality 1),
           relevant: its #2 String. The corpus holds every #2 String of the file (the non-paraphrase ones are
           distractors). A #1 String found verbatim among the passages is relevant to its own query as well (a
           sentence is its own paraphrase; 4 such in dev).
  multirc  zero-shot, test qrels only: SuperGLUE MultiRC val.jsonl; a query is a question, relevant: its paragraph.

Texts are stripped of surrounding white space. Duplicate texts share one id: passages by text (d0, d1, ... in order
of first appearance in the source files), queries by text (q0, q1, ...); a query that comes with several passages
is one query with several relevant passages. Output is deterministic (the same bytes on every run); a set whose
folder already holds files with the same fingerprint is not written again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from dataclasses import dataclass, field

from benchmarks.paths import DATA, RUNS

OUT = os.path.join(RUNS, "retrieval_sets")
SEED = 0
SPLIT_FRACTIONS = {"train": 0.6, "dev": 0.2, "test": 0.2}  # of boolq's passages (of its passage groups)
QRELS_HEADER = "query-id\tcorpus-id\tscore"

BOOLQ = ("superglue/BoolQ/val.jsonl", "superglue/BoolQ/test.jsonl")  # test.jsonl is used when present
RTE = "superglue/RTE/val.jsonl"
MRPC = "glue/MRPC/dev.tsv"
MULTIRC = "superglue/MultiRC/val.jsonl"


@dataclass
class RetrievalSet:
    """One set in memory. corpus: id -> (title, text); queries: id -> text; qrels: split -> [(query id, passage
    id)], each list in order of first appearance; sources: the files read, relative to the data root."""

    name: str
    corpus: dict[str, tuple[str, str]] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    _passage_ids: dict[str, str] = field(default_factory=dict, repr=False)
    _query_ids: dict[str, str] = field(default_factory=dict, repr=False)

    def passage(self, text: str, title: str = "") -> str:
        """The id of this passage (title, text), a new one the first time it is seen."""
        key = json.dumps([title.strip(), text.strip()])
        if key not in self._passage_ids:
            self._passage_ids[key] = f"d{len(self._passage_ids)}"
            self.corpus[self._passage_ids[key]] = (title.strip(), text.strip())
        return self._passage_ids[key]

    def query(self, text: str) -> str:
        """The id of this query text, a new one the first time it is seen."""
        text = text.strip()
        if text not in self._query_ids:
            self._query_ids[text] = f"q{len(self._query_ids)}"
            self.queries[self._query_ids[text]] = text
        return self._query_ids[text]

    def relevant(self, split: str, query_id: str, passage_id: str) -> None:
        pairs = self.qrels.setdefault(split, [])
        if (query_id, passage_id) not in pairs:
            pairs.append((query_id, passage_id))


# ---- reading the official files ----


def _path(data_root: str, relative: str) -> str:
    path = os.path.join(data_root, relative)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{relative} not found under {data_root} (set SHARED_DATA or pass --data)")
    return path


def read_jsonl(data_root: str, relative: str) -> list[dict]:
    with open(_path(data_root, relative), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_glue_tsv(data_root: str, relative: str) -> list[dict[str, str]]:
    """A GLUE .tsv with a header, as rows keyed by column name: tabs only, quotes are text (as tasks/glue.py reads
    it), the UTF-8 BOM of MRPC's header dropped."""
    with open(_path(data_root, relative), encoding="utf-8-sig", newline="") as f:
        lines = [line.rstrip("\r\n") for line in f if line.strip()]
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def _title_and_text(passage: str) -> tuple[str, str]:
    """BoolQ passages are "Wikipedia title -- paragraph"."""
    title, sep, text = passage.partition(" -- ")
    return (title, text) if sep else ("", passage)


# ---- the sets ----


def boolq(data_root: str, seed: int = SEED) -> RetrievalSet:
    rs = RetrievalSet("boolq", qrels={split: [] for split in SPLIT_FRACTIONS})
    pairs = []
    for relative in BOOLQ:
        if relative != BOOLQ[0] and not os.path.isfile(os.path.join(data_root, relative)):
            continue  # the test file is optional; the manifest lists what was read
        rs.sources.append(relative)
        for record in read_jsonl(data_root, relative):
            title, text = _title_and_text(record["passage"])
            pairs.append((rs.query(record["question"]), rs.passage(text, title)))
    # Passages linked through a shared query form one group (union-find), so a group, and with it every query,
    # lands in one split. In the official files every question has one passage: groups are single passages.
    parent = {d: d for d in rs.corpus}

    def root(d):
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    first_passage = {}
    for q, d in pairs:
        if q in first_passage:
            parent[root(d)] = root(first_passage[q])
        first_passage.setdefault(q, d)
    groups = sorted({root(d) for d in rs.corpus}, key=lambda d: int(d[1:]))
    random.Random(seed).shuffle(groups)
    split_of, start, cumulative = {}, 0, 0.0
    for i, (split, fraction) in enumerate(SPLIT_FRACTIONS.items()):
        cumulative += fraction
        end = len(groups) if i == len(SPLIT_FRACTIONS) - 1 else round(cumulative * len(groups))
        split_of.update(dict.fromkeys(groups[start:end], split))
        start = end
    for q, d in pairs:
        rs.relevant(split_of[root(d)], q, d)
    return rs


def rte(data_root: str) -> RetrievalSet:
    rs = RetrievalSet("rte", sources=[RTE])
    for record in read_jsonl(data_root, RTE):
        premise = rs.passage(record["premise"])
        if record["label"] == "entailment":
            rs.relevant("test", rs.query(record["hypothesis"]), premise)
    return rs


def mrpc(data_root: str) -> RetrievalSet:
    rs = RetrievalSet("mrpc", sources=[MRPC])
    rows = read_glue_tsv(data_root, MRPC)
    positives = []
    for row in rows:
        passage = rs.passage(row["#2 String"])
        if row["Quality"] == "1":
            positives.append((rs.query(row["#1 String"]), passage))
    by_text = {text: d for d, (_, text) in rs.corpus.items()}
    for q, d in positives:
        rs.relevant("test", q, d)
        if rs.queries[q] in by_text:  # the query's own sentence is a passage too
            rs.relevant("test", q, by_text[rs.queries[q]])
    return rs


def multirc(data_root: str) -> RetrievalSet:
    rs = RetrievalSet("multirc", sources=[MULTIRC])
    for record in read_jsonl(data_root, MULTIRC):
        paragraph = rs.passage(record["passage"]["text"])
        for question in record["passage"]["questions"]:
            rs.relevant("test", rs.query(question["question"]), paragraph)
    return rs


SETS = {"boolq": boolq, "rte": rte, "mrpc": mrpc, "multirc": multirc}


# ---- writing ----


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def render(rs: RetrievalSet) -> dict[str, bytes]:
    """The set's files, relative path -> bytes (manifest.json aside)."""
    files = {
        "corpus.jsonl": _jsonl({"_id": d, "title": t, "text": x} for d, (t, x) in rs.corpus.items()),
        "queries.jsonl": _jsonl({"_id": q, "text": x} for q, x in rs.queries.items()),
    }
    for split, pairs in rs.qrels.items():
        lines = [QRELS_HEADER] + [f"{q}\t{d}\t1" for q, d in pairs]
        files[f"qrels/{split}.tsv"] = ("\n".join(lines) + "\n").encode("utf-8")
    return files


def fingerprint(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode() + b"\0" + hashlib.sha256(files[relative]).digest())
    return digest.hexdigest()


def sizes(rs: RetrievalSet) -> dict[str, int]:
    return {
        "queries": len(rs.queries),
        "passages": len(rs.corpus),
        "qrels": sum(len(pairs) for pairs in rs.qrels.values()),
    }


def split_sizes(rs: RetrievalSet) -> dict[str, dict[str, int]]:
    return {
        split: {
            "queries": len({q for q, _ in pairs}),
            "passages": len({d for _, d in pairs}),
            "qrels": len(pairs),
        }
        for split, pairs in rs.qrels.items()
    }


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _on_disk(folder: str, names) -> dict[str, bytes] | None:
    files = {}
    for relative in names:
        path = os.path.join(folder, relative)
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            files[relative] = f.read()
    return files


def _write_bytes(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)  # a reader never sees half a file


def write_set(rs: RetrievalSet, out_root: str, data_root: str) -> bool:
    """Write `rs` under out_root/<name>/; False (nothing written) when the folder's manifest and files already
    have this content's fingerprint. Stale qrels files of other splits are removed; the manifest goes last, so an
    interrupted write is redone on the next run."""
    folder = os.path.join(out_root, rs.name)
    files = render(rs)
    digest = fingerprint(files)
    manifest_path = os.path.join(folder, "manifest.json")
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            old = json.load(f)
        disk = _on_disk(folder, old.get("files", []))
        if old.get("fingerprint") == digest and disk is not None and fingerprint(disk) == digest:
            return False
    qrels_dir = os.path.join(folder, "qrels")
    if os.path.isdir(qrels_dir):
        for name in sorted(os.listdir(qrels_dir)):
            if f"qrels/{name}" not in files:
                os.remove(os.path.join(qrels_dir, name))
    for relative, data in files.items():
        _write_bytes(os.path.join(folder, relative), data)
    manifest = {
        "name": rs.name,
        **sizes(rs),
        "splits": split_sizes(rs),
        "sources": {relative: _sha256(os.path.join(data_root, relative)) for relative in rs.sources},
        "seed": SEED if rs.name == "boolq" else None,
        "files": sorted(files),
        "fingerprint": digest,
    }
    _write_bytes(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return True


def build_all(data_root: str = DATA, out_root: str = OUT, report=None) -> dict[str, dict[str, int]]:
    """Build and write every set of SETS; returns {name: {"queries", "passages", "qrels"}}. `report(name, rs,
    written)` is called per set (the command line prints with it)."""
    out = {}
    for name, build in SETS.items():
        rs = build(data_root)
        written = write_set(rs, out_root, data_root)
        out[name] = sizes(rs)
        if report is not None:
            report(name, rs, written)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=OUT, help="where the set folders go (default: %(default)s)")
    parser.add_argument(
        "--data", default=DATA, help="the shared data root (default: $SHARED_DATA or %(default)s)"
    )
    args = parser.parse_args(argv)

    def report(name, rs, written):
        n = sizes(rs)
        splits = "  ".join(
            f"{split}: {s['queries']} q / {s['passages']} p / {s['qrels']} qrels"
            for split, s in split_sizes(rs).items()
        )
        state = "written" if written else "unchanged"
        print(
            f"{name:8s} queries {n['queries']:5d}  passages {n['passages']:5d}  qrels {n['qrels']:5d}  "
            f"[{splits}]  {state}"
        )

    build_all(args.data, args.out, report)
    print(f"sets in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
