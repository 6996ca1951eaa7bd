"""Dense retrieval evaluation for PT-Retrieval (docs: /work/shared/PT-RETRIEVAL.md §4.2): encode, search, score.

    encoder = PooledEncoder(load_backbone(path), pooling="mean", normalize=False)   # or a bi-encoder's towers
    metrics, run = evaluate_split(load_beir(folder, "test"), encoder, encoder, tokenizer, similarity="cos")

- `encode_texts`: texts -> (N, d) float32, in batches of about equal length (longest first, as training/eval_order.py
  does for the NLU tasks), rows handed back in input order; no grad, owning module in eval mode.
- `CorpusCache` + `corpus_fingerprint`: the corpus embeddings kept IN MEMORY (and, with `folder`, also as
  <folder>/<fingerprint>.npy on disk) under a sha256 of everything they depend on, so a corpus is encoded once.
- `exact_search`: exact top-k by chunked matrix products (no index; beir 1.0.0's DenseRetrievalExactSearch), or a
  faiss IndexFlatIP when faiss is installed and asked for.
- `evaluate_split`: one RetrievalSplit -> (tasks.retrieval_metrics.retrieval_scores, the run).

An encoder is any `encode_fn(input_ids, attention_mask, token_type_ids) -> (B, d)` tensor: a bi-encoder's question or
passage side, or a bare backbone with pooling (`PooledEncoder`).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from model.biencoder import POOLINGS, pool
from tasks.retrieval_data import RetrievalSplit
from tasks.retrieval_metrics import retrieval_scores
from training.eval_order import restore_order

EncodeFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Text = str | tuple[str, str]  # a query, or a passage as (title, text)
Run = dict[str, dict[str, float]]
SIMILARITIES = ("dot", "cos")


# -- Encoding -------------------------------------------------------------------------------------------------


class PooledEncoder(nn.Module):
    """A bare backbone as an encoder: last hidden states pooled to one vector per text.

    pooling "mean": the mean over attended tokens (sentence-transformers' all-MiniLM-L6-v2); "cls": the first token's
    state (DPR's representation, `hf_models.py`). normalize: divide by the L2 norm (then dot = cosine)."""

    def __init__(self, backbone: nn.Module, pooling: str = "mean", normalize: bool = False):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of: {', '.join(POOLINGS)}")
        self.backbone, self.pooling, self.normalize = backbone, pooling, normalize

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (B, T, H)
        pooled = pool(hidden, attention_mask, self.pooling)  # (B, H), the bi-encoder's pooling
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


def _owner(encode_fn) -> nn.Module | None:
    """The module behind an encoder: the encoder itself, or the object of a bound method (`model.encode_passage`)."""
    if isinstance(encode_fn, nn.Module):
        return encode_fn
    owner = getattr(encode_fn, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


def tokenize_texts(tokenizer, texts: Sequence[Text], max_length: int) -> list[dict[str, list[int]]]:
    """Token ids of each text, unpadded. A str is one sequence (plain truncation); a (title, text) pair with a title is
    `[CLS] title [SEP] text [SEP]` with only the text truncated, with an empty title the text alone (DPRForBeir,
    `beir_eval/models.py:83-99`; Rust tokenizers refuse `only_second` on a single text, PT-RETRIEVAL.md §8.3)."""
    singles = [i for i, t in enumerate(texts) if isinstance(t, str) or not t[0]]
    pairs = [i for i, t in enumerate(texts) if not isinstance(t, str) and t[0]]
    rows: list[dict | None] = [None] * len(texts)
    if singles:
        plain = [texts[i] if isinstance(texts[i], str) else texts[i][1] for i in singles]
        got = tokenizer(plain, truncation=True, max_length=max_length)
        for j, i in enumerate(singles):
            rows[i] = {key: got[key][j] for key in got}
    if pairs:
        got = tokenizer(
            [texts[i][0] for i in pairs],
            [texts[i][1] for i in pairs],
            truncation="only_second",
            max_length=max_length,
        )
        for j, i in enumerate(pairs):
            rows[i] = {key: got[key][j] for key in got}
    return rows


def _batch(rows: Sequence[dict[str, list[int]]], pad_id: int, device) -> tuple[torch.Tensor, ...]:
    """(input_ids, attention_mask, token_type_ids), each (B, T) padded on the right to the longest row."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long)  # tokenizers without segments: all 0
    for b, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[b, :n] = torch.tensor(r["input_ids"])
        mask[b, :n] = 1
        if "token_type_ids" in r:
            types[b, :n] = torch.tensor(r["token_type_ids"])
    return ids.to(device), mask.to(device), types.to(device)


def encode_texts(
    encode_fn: EncodeFn,
    tokenizer,
    texts: Sequence[Text],
    batch_size: int = 128,
    max_length: int = 512,
    *,
    device: torch.device | str | None = None,
    block: int = 100_000,
) -> np.ndarray:
    """Embeddings (N, d) float32 of `texts` (str, or (title, text) passages: `tokenize_texts`), row i for texts[i].

    Texts are tokenized `block` at a time (a corpus of millions never sits tokenized in memory); within a block,
    batches of `batch_size` sorted by tokenized length, longest first (stable), each padded on the right to its longest
    member. The attention mask keeps a text's vector independent of its batch-mates, so only the order needs undoing
    (DPR pads everything to `max_length` instead: the same vectors up to float rounding). Runs under torch.no_grad()
    with the encoder's module (`encode_fn` itself or the object of a bound method) in eval mode; every submodule's
    train/eval mode is restored afterwards. device: where inputs go; default the module's parameters' device, or CPU.
    """
    if batch_size < 1 or block < 1:
        raise ValueError(f"batch_size and block must be >= 1, got {batch_size} and {block}")
    if not texts:
        raise ValueError("no texts to encode")
    module = _owner(encode_fn)
    param = next(module.parameters(), None) if module is not None else None
    device = device or (param.device if param is not None else torch.device("cpu"))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    modes = {m: m.training for m in module.modules()} if module is not None else {}
    if module is not None:
        module.eval()
    out = []
    try:
        with torch.no_grad():
            for first in range(0, len(texts), block):
                rows = tokenize_texts(tokenizer, texts[first : first + block], max_length)
                order = np.argsort(-np.array([len(r["input_ids"]) for r in rows]), kind="stable")
                batches = (
                    _batch([rows[i] for i in order[b : b + batch_size]], pad_id, device)
                    for b in range(0, len(order), batch_size)
                )
                vectors = [encode_fn(*batch).float().cpu() for batch in batches]  # (B, d) each, longest first
                out.append(restore_order(torch.cat(vectors).numpy(), order))
    finally:
        for m, training in modes.items():
            m.training = training
    return np.concatenate(out).astype(np.float32, copy=False)  # (N, d)


# -- Corpus cache ---------------------------------------------------------------------------------------------


def model_fingerprint(model: nn.Module | str) -> str:
    """sha256 of a module's state (every parameter and buffer: name, dtype, shape, bytes); a str is taken as given."""
    if isinstance(model, str):
        return model
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def corpus_fingerprint(
    corpus: Mapping[str, tuple[str, str]],
    model: nn.Module | str,
    *,
    max_length: int,
    pooling: str = "",
    tokenizer=None,
) -> str:
    """sha256 over what corpus embeddings depend on: passage ids, titles and texts in order, the passage encoder
    (`model_fingerprint`), max_length, pooling, and the tokenizer's class and size when given. Any change -> a new key."""
    digest = hashlib.sha256()
    for pid, (title, text) in corpus.items():
        for part in (pid, title, text):
            data = part.encode()
            digest.update(len(data).to_bytes(8, "little") + data)  # length-prefixed: no ambiguous joins
    tok = f"{type(tokenizer).__name__}:{len(tokenizer)}" if tokenizer is not None else ""
    digest.update(f"|{model_fingerprint(model)}|{max_length}|{pooling}|{tok}".encode())
    return digest.hexdigest()


class CorpusCache:
    """Corpus embeddings by fingerprint. In memory: the `keep` most recently used arrays (an LRU). With `folder`, also
    on disk as <folder>/<fingerprint>.npy, read back by later processes. A changed corpus, encoder weight, max_length
    or pooling changes the fingerprint, so a stale array is never returned (old .npy files are left for the user)."""

    def __init__(self, folder: str | None = None, keep: int = 1):
        self.folder, self.keep = folder, keep
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()

    def get_or_encode(self, fingerprint: str, encode: Callable[[], np.ndarray]) -> np.ndarray:
        """The array cached under `fingerprint`, or `encode()`'s, stored before it is returned."""
        if fingerprint in self._memory:
            self._memory.move_to_end(fingerprint)
            return self._memory[fingerprint]
        path = os.path.join(self.folder, f"{fingerprint}.npy") if self.folder else None
        if path and os.path.isfile(path):
            array = np.load(path)
        else:
            array = np.asarray(encode(), dtype=np.float32)
            if path:
                os.makedirs(self.folder, exist_ok=True)
                # written whole, then renamed: a half-written file is never read back
                partial = f"{path}.{os.getpid()}.tmp.npy"
                np.save(partial, array)
                os.replace(partial, path)
        self._memory[fingerprint] = array
        while len(self._memory) > self.keep:
            self._memory.popitem(last=False)
        return array


# -- Exact search ---------------------------------------------------------------------------------------------


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices (Q, k) of each row's k best scores; ties at the cut go to the lowest column (any order within)."""
    n = scores.shape[1]
    if k >= n:
        return np.broadcast_to(np.arange(n), scores.shape).copy()
    cut = np.partition(scores, n - k, axis=1)[:, n - k : n - k + 1]  # (Q, 1) the k-th best score
    above = scores > cut  # (Q, n)
    tied = scores == cut
    keep = above | tied
    # rows with more ties at the cut than places left (rare on real vectors)
    over = np.nonzero(keep.sum(1) > k)[0]
    if len(over):
        need = k - above[over].sum(1, keepdims=True)  # (R, 1) tied columns still to take
        keep[over] = above[over] | (tied[over] & (np.cumsum(tied[over], axis=1) <= need))  # exactly k per row
    return np.nonzero(keep)[1].reshape(len(scores), k)  # row-major: ascending columns per row


def exact_search(
    query_emb: np.ndarray,
    corpus_emb: np.ndarray,
    corpus_ids: Sequence[str],
    k: int,
    *,
    query_ids: Sequence[str],
    similarity: str = "dot",
    chunk: int = 50_000,
    skip_identical_ids: bool = False,
    use_faiss: bool = False,
) -> Run:
    """The k best passages per query: {query id: {passage id: score}}, best first, scores as float.

    query_emb (Q, d), corpus_emb (N, d) with row j for corpus_ids[j]. similarity "dot" (DPR, PT-Retrieval) or "cos"
    (both sides L2-normalised first). Scores are matrix products (float64, rounded to float32) over corpus chunks of
    `chunk` rows, each chunk's top k merged into a running top k (beir 1.0.0's DenseRetrievalExactSearch); memory
    is about Q x chunk x 17 bytes. Ties are ordered by corpus position, first first, whatever `chunk` is.
    skip_identical_ids: never return a passage whose id equals the query's id (ArguAna, Quora; beir 1.0.0 skips it
    during search), so k others come back.
    use_faiss: search a faiss.IndexFlatIP instead (needs faiss; same top k, tie order up to faiss).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; choose one of: {', '.join(SIMILARITIES)}")
    query_emb = np.ascontiguousarray(query_emb, dtype=np.float32)
    corpus_emb = np.ascontiguousarray(corpus_emb, dtype=np.float32)
    if len(query_ids) != len(query_emb) or len(corpus_ids) != len(corpus_emb):
        raise ValueError(
            f"{len(query_emb)} query vectors for {len(query_ids)} ids, {len(corpus_emb)} passage vectors for "
            f"{len(corpus_ids)} ids"
        )
    if query_emb.shape[1] != corpus_emb.shape[1]:
        raise ValueError(f"query vectors are {query_emb.shape[1]}-d, passage vectors {corpus_emb.shape[1]}-d")
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be >= 1, got k={k}, chunk={chunk}")
    if similarity == "cos":
        query_emb, corpus_emb = _normalize(query_emb), _normalize(corpus_emb)
    n_q, n = len(query_emb), len(corpus_emb)
    own = {}  # query row -> corpus row of the passage with the query's id
    if skip_identical_ids:
        position = {pid: j for j, pid in enumerate(corpus_ids)}
        own = {i: position[qid] for i, qid in enumerate(query_ids) if qid in position}
    depth = min(k + (1 if own else 0), n)

    if use_faiss:
        import faiss  # optional: only this branch needs it

        index = faiss.IndexFlatIP(corpus_emb.shape[1])
        index.add(corpus_emb)
        best_scores, best_rows = index.search(query_emb, depth)  # (Q, depth) each
    else:
        query64 = query_emb.astype(np.float64)
        best_scores = np.full((n_q, 0), -np.inf, dtype=np.float32)
        best_rows = np.zeros((n_q, 0), dtype=np.int64)
        for start in range(0, n, chunk):
            # float64 products rounded to float32: BLAS sums in an order that depends on the matrix shapes, so a
            # float32 product could differ in its last bit from one chunking to another and reorder near-ties
            scores = (query64 @ corpus_emb[start : start + chunk].T.astype(np.float64)).astype(np.float32)
            for i, j in own.items():
                if start <= j < start + chunk:
                    scores[i, j - start] = -np.inf
            cols = _top_k(scores, min(depth, scores.shape[1]))  # (Q, k_chunk)
            cand_scores = np.concatenate([best_scores, np.take_along_axis(scores, cols, 1)], axis=1)
            cand_rows = np.concatenate([best_rows, cols + start], axis=1)  # (Q, k_best + k_chunk)
            # score descending, then corpus position
            pick = np.lexsort((cand_rows, -cand_scores), axis=1)[:, :depth]
            best_scores = np.take_along_axis(cand_scores, pick, 1)
            best_rows = np.take_along_axis(cand_rows, pick, 1)

    run: Run = {}
    for i, qid in enumerate(query_ids):
        hits = [(int(j), float(s)) for j, s in zip(best_rows[i], best_scores[i], strict=True)]
        hits = [(j, s) for j, s in hits if j >= 0 and j != own.get(i, -1) and s != -np.inf]
        run[qid] = {corpus_ids[j]: s for j, s in hits[:k]}
    return run


# -- One split ------------------------------------------------------------------------------------------------


def evaluate_split(
    split: RetrievalSplit,
    encode_query: EncodeFn,
    encode_passage: EncodeFn,
    tokenizer,
    *,
    k: int = 100,
    batch_size: int = 128,
    max_length: int = 512,
    query_max_length: int | None = None,
    similarity: str = "dot",
    chunk: int = 50_000,
    cache: CorpusCache | None = None,
    passage_model: nn.Module | str | None = None,
    pooling: str | None = None,
    device: torch.device | str | None = None,
) -> tuple[dict[str, float], Run]:
    """Encode the split's queries and corpus, retrieve the k best passages per query, score them.

    Returns (retrieval_scores: ndcg_at_10, recall_at_20, recall_at_100, mrr_at_10, unrounded; the run). Queries are
    encoded raw, passages as (title, text) (`tokenize_texts`), both at most `max_length` tokens (512, as DPRForBeir;
    queries `query_max_length` when given). Passages whose id equals the query's id are skipped (BEIR).
    cache: reuse corpus embeddings across calls under `corpus_fingerprint`; the encoder part of the key is
    `passage_model` (a module hashed by its weights, or a fingerprint string), by default encode_passage's module.
    pooling: part of the key; by default encode_passage's `.pooling` attribute (PooledEncoder), else "".
    Without a cache the corpus is encoded on every call.
    """

    def encode_corpus() -> np.ndarray:
        passages = list(split.corpus.values())
        return encode_texts(encode_passage, tokenizer, passages, batch_size, max_length, device=device)

    if cache is None:
        corpus_emb = encode_corpus()
    else:
        model = passage_model if passage_model is not None else _owner(encode_passage)
        if model is None:
            raise ValueError(
                "a corpus cache needs the passage encoder's identity: pass passage_model (the module whose weights "
                "encode passages, or a fingerprint string)"
            )
        if pooling is None:
            pooling = str(getattr(_owner(encode_passage), "pooling", ""))
        key = corpus_fingerprint(
            split.corpus, model, max_length=max_length, pooling=pooling, tokenizer=tokenizer
        )
        corpus_emb = cache.get_or_encode(key, encode_corpus)

    queries, length = list(split.queries.values()), query_max_length or max_length
    query_emb = encode_texts(encode_query, tokenizer, queries, batch_size, length, device=device)
    search = dict(similarity=similarity, chunk=chunk, skip_identical_ids=True)
    run = exact_search(query_emb, corpus_emb, list(split.corpus), k, query_ids=list(split.queries), **search)
    return retrieval_scores(split.qrels, run), run
