"""One backbone + batch shape (Spec), its random backbone's config, and the padded batch every speed benchmark times.

The CPU speed benchmark (speed.py, BERT shapes) and the GPU check (gpu_check.py, roberta-large's shape) read the
same Spec: `config()` is the random backbone's HF config, `make_batch` the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import AutoConfig, BertConfig, RobertaConfig

from benchmarks.paths import minilm_path

# Spec field -> the HF config attribute it sets (config) or is read from (minilm_spec)
HF_NAMES = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "heads": "num_attention_heads",
    "ffn": "intermediate_size",
    "vocab": "vocab_size",
    "max_positions": "max_position_embeddings",
}


@dataclass(frozen=True)
class Spec:
    """A backbone and the batch it is timed on. `pretrained` is a local model directory; None builds a random
    `model_type` backbone from the sizes below (BERT's or RoBERTa's special tokens and embedding sizes)."""

    name: str
    batch: int = 16
    seq_len: int = 128
    pre_seq_len: int = 16
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    ffn: int = 1024
    vocab: int = 30522
    max_positions: int = 512
    pretrained: str | None = None
    num_labels: int = 2
    model_type: str = "bert"  # "bert" or "roberta"

    @property
    def pad_id(self) -> int:
        return 1 if self.model_type == "roberta" else 0  # RoBERTa's <pad>, BERT's [PAD]

    @property
    def first_word_id(self) -> int:
        """Random ids start here: above RoBERTa's specials (0-3), above BERT's [unused*] rows (1-998)."""
        return 3 if self.model_type == "roberta" else min(1000, self.vocab // 2)

    def config(self, dropout: float = 0.1):
        """The random backbone's HF config: BERT's defaults, or roberta-large's config.json; dropout 0.1 by
        default everywhere (hidden and attention), as both models ship."""
        sizes = {hf: getattr(self, name) for name, hf in HF_NAMES.items()}
        sizes.update(
            num_labels=self.num_labels, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
        )
        if self.model_type == "roberta":
            roberta = dict(
                type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2
            )
            return RobertaConfig(**sizes, **roberta)
        return BertConfig(**sizes)


# CPU (speed.py). The headline config: its ratios are the ones checked against cpu/report.TARGETS.
BERT_4x256 = Spec("bert-4x256-random")
# bert-base-uncased's shape, random weights
BERT_BASE = Spec("bert-base-12x768-random", layers=12, hidden=768, heads=12, ffn=3072)
TINY = Spec(
    "tiny-2x32-random", batch=4, seq_len=16, pre_seq_len=4, layers=2, hidden=32, heads=4, ffn=64, vocab=200
)
# GPU (gpu_check.py): roberta-large with run_script/run_rte_roberta.sh's sizes, and its CPU smoke stand-in.
ROBERTA_LARGE = Spec("roberta-large (random weights)", batch=32, seq_len=128, pre_seq_len=128, layers=24,
                     hidden=1024, heads=16, ffn=4096, vocab=50265, max_positions=514, model_type="roberta")  # fmt: skip
ROBERTA_SMOKE = Spec("tiny roberta 2 x 64 (smoke)", batch=4, seq_len=16, pre_seq_len=8, layers=2, hidden=64,
                     heads=4, ffn=128, vocab=200, max_positions=64, model_type="roberta")  # fmt: skip


def minilm_spec() -> Spec | None:
    """The packaged all-MiniLM-L6-v2 at the headline batch shape; None when the package is not installed."""
    try:
        path = minilm_path()
    except ImportError:
        return None
    config = AutoConfig.from_pretrained(path)
    return Spec(
        "all-MiniLM-L6-v2", pretrained=path, **{name: getattr(config, hf) for name, hf in HF_NAMES.items()}
    )


def make_batch(spec: Spec, seq_len: int | None = None, seed: int = 0, device="cpu") -> dict:
    """B rows padded to T, as --pad_to_max_length batches are: random ids, random lengths in [T/2, T], row 0 full,
    random labels. {"input_ids", "attention_mask", "labels"}, on `device`."""
    T, B = seq_len or spec.seq_len, spec.batch
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(spec.first_word_id, spec.vocab, (B, T), generator=g)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T)
    ids = ids.masked_fill(mask == 0, spec.pad_id)
    labels = torch.randint(0, spec.num_labels, (B,), generator=g)
    return {k: v.to(device) for k, v in {"input_ids": ids, "attention_mask": mask, "labels": labels}.items()}
