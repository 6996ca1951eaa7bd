"""Records longer than --max_seq_length: word windows for tagging, a `truncated` mark for the other heads.

Tagging. The task's own encoding (tasks/tagging.py `tokenize_and_align`) cuts a sentence at --max_seq_length, and
run.py's --do_predict files call the cut words "O". Here every word gets its own tag: a record whose words do not all
fit is encoded whole by the task's own preprocess (no truncation), and its sentence tokens (sequence 0) are cut into
windows of whole words, each `prefix specials + words[i:j] + the rest` (the closing specials, and SRL's predicate
segment) within --max_seq_length, like QA's overlapping --doc_stride windows:

  budget B = max_seq_length - (special tokens + predicate segment); a window holds the most words that fit in B
  (a single word longer than B is cut inside the word: its first sub-token, which carries its tag, stays); the next
  window starts at the first word from which the previous window's end is at most B // 2 tokens away (windows
  overlap by about half a window); each word is tagged from the window where it has the most context,
  min(tokens before it, tokens after it) in that window (the "max context" rule of HF's SQuAD windows), the
  earliest window on a tie.

Since a fast tokenizer encodes pre-split words one by one, a window's tokens are exactly those of the task's
encoding of words[i:j] alone (tests/test_predict.py compares each word with that encoding run as its own record).

Other heads (sequence classification, multiple choice): a feature that the task's preprocess truncated is found by
re-encoding it without the limit; predict marks its record `"truncated": true`. QA needs neither: its contexts are
already windowed by the task (--doc_stride).
"""

from __future__ import annotations

from contextlib import contextmanager
from itertools import accumulate
from types import SimpleNamespace

from model.config import PTuningError
from tasks.tagging import IGNORE, fix_empty_words

UNLIMITED = 1_000_000_000  # a --max_seq_length that no input reaches


@contextmanager
def unlimited(tokenizer):
    """The tokenizer with its model_max_length lifted (tasks cap --max_seq_length by it) for the block."""
    saved = tokenizer.model_max_length
    tokenizer.model_max_length = UNLIMITED
    try:
        yield tokenizer
    finally:
        tokenizer.model_max_length = saved


def encode_whole(task, tokenizer, data_args, examples) -> dict:
    """The task's own features of `examples` (a datasets.Dataset), with no length limit: a dict of lists."""
    args = SimpleNamespace(**{**vars(data_args), "max_seq_length": UNLIMITED})
    with unlimited(tokenizer):
        return dict(task.preprocess(examples[:], tokenizer=tokenizer, data_args=args))


def _token_spans(lengths: list[int]) -> tuple[list[int], list[int]]:
    """Per word its first token and its end (exclusive), counting from the sentence's first token."""
    ends = list(accumulate(lengths))
    return [e - n for e, n in zip(ends, lengths, strict=True)], ends


def word_windows(lengths: list[int], budget: int) -> list[tuple[int, int]]:
    """Word windows [i, j) over words of `lengths` sub-tokens (see the module docstring), in order."""
    starts, ends = _token_spans(lengths)
    windows, i = [], 0
    while True:
        j = i + 1
        while j < len(lengths) and ends[j] - starts[i] <= budget:
            j += 1
        windows.append((i, j))
        if j == len(lengths):
            return windows
        k = i + 1  # the next window starts where the rest of this one is at most half the budget
        while k < j and ends[j - 1] - starts[k] > budget // 2:
            k += 1
        i = k


def best_windows(lengths: list[int], windows: list[tuple[int, int]], budget: int) -> list[int]:
    """Per word, the index of the window it is tagged from: most context (tokens before and after it in the
    window, the smaller of the two), the earliest window on a tie."""
    starts, ends = _token_spans(lengths)
    best: list[tuple[int, int]] = [(-(2**62), -1)] * len(lengths)  # (context, window)
    for k, (i, j) in enumerate(windows):
        end = min(ends[j - 1], starts[i] + budget)
        for w in range(i, j):
            context = min(starts[w] - starts[i], end - ends[w])
            if context > best[w][0]:
                best[w] = (context, k)
    return [k for _, k in best]


def _sentence_span(tokenizer, words: list[str], pair_index: int | None) -> tuple[int, int, list[int]]:
    """([b0, b1), ids): where sequence 0 (the sentence) sits in the tokenizer's encoding of the words (and, for
    SRL, the predicate word as a second segment), encoded as tasks/tagging.py `tokenize_and_align` does."""

    def encode(w):
        return tokenizer(w, None if pair_index is None else [w[pair_index]], is_split_into_words=True)

    enc = encode(words)
    fixed = fix_empty_words([words], enc, tokenizer)  # a word that encodes to nothing becomes the unk token
    if fixed is not None:
        enc = encode(fixed[0])
    sentence = [t for t, s in enumerate(enc.sequence_ids(0)) if s == 0]
    return sentence[0], sentence[-1] + 1, list(enc["input_ids"])


def tagging_windows(task, tokenizer, data_args, examples, features, where: list[str]):
    """The features to run for tagging `examples` (one per example when it fits, else its windows) and, per
    example, for each word the (feature index, token position) whose logits tag it.

    `features`: the task's own (truncated) features of `examples`, one per example; `where`: per example a location
    for error messages."""
    # SRL: the predicate's word index column (tasks/tagging.py binds it into the task's preprocess)
    pair_column = getattr(task.preprocess, "keywords", {}).get("pair_column")
    words = [list(w) for w in examples["tokens"]]
    pairs = list(examples[pair_column]) if pair_column else [None] * len(words)
    columns = list(features.column_names)
    out = {c: [] for c in columns}
    positions: list[list[tuple[int, int]]] = [None] * len(words)
    long = []
    for k, feature in enumerate(features):
        kept = [t for t, g in enumerate(feature["labels"]) if g != IGNORE]
        if len(kept) < len(words[k]):
            long.append(k)
            continue
        positions[k] = [(len(out["labels"]), t) for t in kept]
        for c in columns:
            out[c].append(feature[c])
    if not long:
        return out, positions
    whole = encode_whole(task, tokenizer, data_args, examples.select(long))
    for n, k in enumerate(long):
        full = {c: whole[c][n] for c in columns}
        L = len(full["input_ids"])
        b0, b1, ids = _sentence_span(tokenizer, words[k], pairs[k])
        starts = [t for t in range(b0, b1) if full["labels"][t] != IGNORE]
        if ids != full["input_ids"] or len(starts) != len(words[k]):  # never window what we cannot map back
            raise PTuningError(
                f"{where[k]}: cannot cut this {task.name} record into windows (its encoding is not one sentence "
                f"segment with one tag position per word); shorten it to fit --max_seq_length "
                f"{data_args.max_seq_length}."
            )
        budget = data_args.max_seq_length - (L - (b1 - b0))
        if budget < 1:
            raise PTuningError(
                f"{where[k]}: the special tokens and predicate segment alone take {L - (b1 - b0)} of the "
                f"{data_args.max_seq_length} tokens (--max_seq_length): shorten the predicate word."
            )
        lengths = [e - s for s, e in zip(starts, [*starts[1:], b1], strict=True)]
        windows = word_windows(lengths, budget)
        first = len(out["labels"])
        for i, j in windows:
            a = starts[i]
            b = min(starts[j] if j < len(starts) else b1, a + budget)
            for c in columns:
                value = full[c]
                out[c].append(
                    value[:b0] + value[a:b] + value[b1:]
                    if isinstance(value, list) and len(value) == L
                    else value
                )
        chosen = best_windows(lengths, windows, budget)
        positions[k] = [
            (first + chosen[w], b0 + starts[w] - starts[windows[chosen[w]][0]]) for w in range(len(words[k]))
        ]
    return out, positions


def truncated_features(task, tokenizer, data_args, examples, features) -> list[bool]:
    """Per feature (1:1 with `examples`), whether the task's preprocess cut it: only a feature as long as the limit
    can have been cut, so only those are encoded again without the limit and compared."""
    limit = min(data_args.max_seq_length, tokenizer.model_max_length)
    rows = lambda ids: ids if ids and isinstance(ids[0], list) else [ids]  # noqa: E731  multiple choice: (C, T)
    lengths = [[len(r) for r in rows(ids)] for ids in features["input_ids"]]
    candidates = [k for k, ls in enumerate(lengths) if max(ls) >= limit]
    out = [False] * len(lengths)
    if candidates:
        whole = encode_whole(task, tokenizer, data_args, examples.select(candidates))["input_ids"]
        for k, ids in zip(candidates, whole, strict=True):
            out[k] = any(len(r) > n for r, n in zip(rows(ids), lengths[k], strict=True))
    return out
