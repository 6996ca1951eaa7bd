"""serving/windows.py: how a long tagging record is cut into word windows, and which window tags each word.
The numbers are worked out by hand from the rule in the module docstring."""

from serving.windows import best_windows, word_windows


def test_windows_hold_whole_words_within_the_budget_and_overlap_by_half():
    lengths = [1, 2, 1, 3, 1, 1, 2, 1]  # sub-tokens per word: token starts 0 1 3 4 7 8 9 11, end 12
    # budget 6: [0, 3) = 4 tokens (word 3 would make 7); the next window starts at the first word from which
    # the end (token 4) is <= 3 away: word 1 (start 1) -> [1, 4) = 6 tokens; then end 7: word 3 (start 4) ->
    # [3, 6) = 5 tokens (word 6 would make 7); end 9: word 4 (start 7) -> [4, 8) = 5 tokens, the last word.
    assert word_windows(lengths, 6) == [(0, 3), (1, 4), (3, 6), (4, 8)]


def test_a_short_sentence_is_one_window_and_a_word_longer_than_the_budget_its_own():
    assert word_windows([2, 2, 2], 6) == [(0, 3)]
    assert word_windows([1, 9, 1], 4) == [(0, 1), (1, 2), (2, 3)]


def test_each_word_is_tagged_from_the_window_where_it_has_most_context():
    lengths = [1, 2, 1, 3, 1, 1, 2, 1]
    windows = [(0, 3), (1, 4), (3, 6), (4, 8)]
    # word 1 (tokens 1-2): window 0 gives min(1, 1) = 1, window 1 min(0, 4) = 0 -> window 0.
    # word 2 (token 3): window 0 min(3, 0) = 0, window 1 min(2, 3) = 2 -> window 1.
    # word 3 (tokens 4-6): window 1 min(3, 0), window 2 min(0, 2) -> 0 both, the earlier: window 1.
    # word 4 (token 7): window 2 min(3, 1) = 1, window 3 min(0, 4) = 0 -> window 2.
    # word 5 (token 8): window 2 min(4, 0) = 0, window 3 min(1, 3) = 1 -> window 3.
    assert best_windows(lengths, windows, 6) == [0, 0, 1, 1, 2, 3, 3, 3]


def test_truncation_is_found_even_where_the_tokenizer_caps_max_seq_length():
    """SuperGLUE/GLUE encode at min(--max_seq_length, model_max_length): a record cut at the tokenizer's own cap
    is still reported (re-encoded with the cap lifted), and one that fits exactly is not."""
    from types import SimpleNamespace

    from serving.windows import truncated_features
    from tasks import get_task
    from tiny import bert_tokenizer

    task = get_task("superglue", "rte")
    tokenizer = bert_tokenizer()
    records = [
        {"premise": "a b c d e f g", "hypothesis": "h"},  # [CLS] 7 [SEP] 1 [SEP] = 11 tokens
        {"premise": "a b c d e f", "hypothesis": "h"},  # 10 tokens: exactly the cap
        {"premise": "a b", "hypothesis": "h"},
    ]
    examples, _ = task.examples_from_records(records, ["1", "2", "3"])
    args = SimpleNamespace(max_seq_length=128, pad_to_max_length=False, template_id=0, doc_stride=64)
    saved = tokenizer.model_max_length
    tokenizer.model_max_length = 10
    try:
        features = task.preprocess(examples[:], tokenizer=tokenizer, data_args=args)
        assert [len(ids) for ids in features["input_ids"]] == [10, 10, 6]
        assert truncated_features(task, tokenizer, args, examples, features) == [True, False, False]
        assert tokenizer.model_max_length == 10  # lifted only while re-encoding
    finally:
        tokenizer.model_max_length = saved
