"""The trainable prompt parameters. Follows the original model/prefix_encoder.py."""

from __future__ import annotations

import os

import torch
from torch import nn

from model.config import PREFIX_INITS, MethodConfig, PTuningError


class PrefixEncoder(nn.Module):
    """P-tuning v2 prefix: P virtual tokens -> one key and one value vector per prefixed layer.

    Without projection: Embedding(P, 2·L·H), i.e. every layer's key/value prefix is a free parameter.
    With projection (prefix-tuning's reparameterisation): Embedding(P, H) -> Linear(H, h) -> Tanh -> Linear(h, 2·L·H).
    L is the number of prefixed layers (`method.prefix_layers`), H = heads × head_dim of the backbone's attention.
    The encoder owns the layout: a row of the table is [layer l₀: key (heads·d) | value (heads·d)][layer l₁: ...] ...,
    the original's past_key_values view; `layer_prefixes` cuts it into per-layer (key, value) for the injector.
    """

    def __init__(self, method: MethodConfig, config):
        super().__init__()
        self.method_config = method  # P, the prefixed layers, projection: read from here, not copied
        self.num_hidden_layers, self.heads = config.num_hidden_layers, config.num_attention_heads
        self.head_dim = getattr(config, "attention_head_size", None) or config.hidden_size // self.heads
        P, out_dim = method.pre_seq_len, 2 * len(method.prefix_layers) * self.heads * self.head_dim
        self.projection = method.prefix_projection
        if self.projection:
            self.embedding = nn.Embedding(P, config.hidden_size)
            self.trans = nn.Sequential(
                nn.Linear(config.hidden_size, method.prefix_hidden_size),
                nn.Tanh(),
                nn.Linear(method.prefix_hidden_size, out_dim),
            )
        else:
            self.embedding = nn.Embedding(P, out_dim)
        self.register_buffer("prefix_ids", torch.arange(P), persistent=False)
        # --prefix_dropout: the prefix's own rate; None: the model's shared dropout (the original's behaviour)
        self.dropout = None if method.prefix_dropout is None else nn.Dropout(method.prefix_dropout)

    def forward(self) -> torch.Tensor:
        """The prefix of every layer, computed once per forward: (P, 2·L·H). It is shared by the whole batch."""
        prefix = self.embedding(self.prefix_ids)  # (P, H) or (P, 2·L·H)
        return self.trans(prefix) if self.projection else prefix

    def layer_prefixes(self, batch: int, prefix_attention_mask=None, shared_dropout=None) -> list:
        """Per backbone layer: (key, value, mask) with key/value (B, heads, P, d) expanded, not copied; or None for a
        layer without prefix. `prefix_attention_mask` (B, P) bool: the prefix slots a query may attend to (None:
        all). Dropout: the encoder's own (--prefix_dropout), else `shared_dropout`."""
        P, layers = self.method_config.pre_seq_len, self.method_config.prefix_layers
        heads, d = self.heads, self.head_dim
        drop = self.dropout if self.dropout is not None else shared_dropout
        prefix = self()  # (P, 2·L'·heads·d)
        if drop is not None:
            prefix = drop(prefix)
        prefix = prefix.view(P, len(layers), 2, heads, d)  # (P, L', key/value, heads, d)
        prefix = prefix.permute(1, 2, 3, 0, 4)  # (L', 2, heads, P, d)
        per_layer: list = [None] * self.num_hidden_layers
        for i, layer in enumerate(layers):
            key, value = prefix[i, 0], prefix[i, 1]  # (heads, P, d)
            per_layer[layer] = (
                key.expand(batch, heads, P, d),  # (B, heads, P, d), stride 0 over the batch
                value.expand(batch, heads, P, d),
                prefix_attention_mask,
            )
        return per_layer


class PromptEncoder(nn.Module):
    """Shallow prompt tuning (Lester et al.): P trainable vectors in word-embedding space, (P, H)."""

    def __init__(self, pre_seq_len: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(pre_seq_len, hidden_size)
        self.register_buffer("prompt_ids", torch.arange(pre_seq_len), persistent=False)

    def forward(self) -> torch.Tensor:
        return self.embedding(self.prompt_ids)  # (P, H)


# -- --prefix_init: how the prompt starts (PREFIX_INITS in model/config.py) ------------------------------------------
# "normal"  the original's N(0, config.initializer_range), applied with the head by PTuningModel.init_new_weights;
#           init_prompt then changes nothing (no random number is drawn), so the default is bit-identical.
# "normal1" N(0, 1) (the scale an independent prefix-tuning implementation starts from). With --prefix_projection
#           only the embedding fed to the MLP is redrawn; the MLP keeps its N(0, initializer_range) weights.
# "tokens"  real tokens, as Li & Liang (2021) initialise prefix-tuning with real words: P vocabulary words sampled
#           with the seeded global RNG; the prefix of layer l becomes the frozen backbone's own key and value
#           projections of those words at layer l (the words run alone through the backbone, dropout off,
#           positions 0..P-1). With --prefix_projection the MLP is fitted to those keys/values (Adam, MSE) starting
#           from the words' word embeddings; prompt tuning starts from the words' word embeddings (Lester et al.).

# the attention's key / value Linear layers: BERT/RoBERTa/ELECTRA/ALBERT, DeBERTa-v2/v3 (DeBERTa v1 fuses them)
KEY_VALUE_NAMES = {"key": ("key", "key_proj"), "value": ("value", "value_proj")}
FIT_STEPS, FIT_LR = 300, 1e-3


def init_prompt(
    model, how: str, token_ids: torch.Tensor | None = None, tokenizer_path: str | None = None
) -> None:
    """Re-initialise `model`'s prefix (method 'prefix') or prompt (method 'prompt') according to --prefix_init.

    Runs after the head's init_new_weights. `token_ids` (P,) are the words for "tokens" (default: sampled from the
    vocabulary of the tokenizer at `tokenizer_path` by `sample_word_ids`); they are kept as `init_token_ids` on the
    encoder."""
    if how not in PREFIX_INITS:
        raise ValueError(f"--prefix_init must be one of {', '.join(PREFIX_INITS)}, got {how!r}")
    if how == "normal" or model.method == "finetune":
        return
    if model.method not in ("prefix", "prompt"):
        raise PTuningError(f"--prefix_init {how} is defined for --prefix and --prompt, not {model.method!r}")
    encoder = model.prefix_encoder if model.method == "prefix" else model.prompt_encoder
    if how == "normal1":
        nn.init.normal_(encoder.embedding.weight, mean=0.0, std=1.0)
        return
    if token_ids is None:
        token_ids = sample_word_ids(model.config, model.pre_seq_len, tokenizer_path)
    encoder.init_token_ids = token_ids
    words = model.backbone.get_input_embeddings().weight[token_ids].detach()  # (P, E)
    if model.method == "prompt":
        encoder.embedding.weight.data.copy_(words)
        return
    target = token_key_values(model, token_ids)  # (P, 2·L'·H)
    if not encoder.projection:
        encoder.embedding.weight.data.copy_(target)
        return
    if words.shape[1] == encoder.embedding.embedding_dim:
        encoder.embedding.weight.data.copy_(words)
    fit_to(encoder, target)


def token_key_values(model, token_ids: torch.Tensor) -> torch.Tensor:
    """The frozen backbone's key and value projections of `token_ids` run alone, laid out as PrefixEncoder's
    output: (P, 2·L'·H) = (P, L', key/value, heads, head_dim) flattened, L' = the prefixed layers."""
    backbone, L, layers = model.backbone, model.config.num_hidden_layers, model.method_config.prefix_layers
    captured: dict[str, list[torch.Tensor]] = {"key": [], "value": []}
    hooks = []
    for name, module in backbone.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        for kind, names in KEY_VALUE_NAMES.items():
            if leaf in names and isinstance(module, nn.Linear):
                hooks.append(module.register_forward_hook(lambda m, i, out, k=kind: captured[k].append(out)))
    was_training = backbone.training
    backbone.eval()
    if model.injector is not None:
        model.injector.set(None)  # a plain forward: no prefix
    try:
        with torch.no_grad():
            backbone(input_ids=token_ids[None], attention_mask=torch.ones_like(token_ids[None]))
    finally:
        for hook in hooks:
            hook.remove()
        backbone.train(was_training)
    if len(captured["key"]) != L or len(captured["value"]) != L:  # ALBERT's shared layer fires once per depth
        raise ValueError(
            f"--prefix_init tokens found {len(captured['key'])} key / {len(captured['value'])} value projections "
            f"for {L} layers of {model.config.model_type}: it reads the Linear layers {KEY_VALUE_NAMES}; use "
            "--prefix_init normal or normal1 with this backbone."
        )
    keys = torch.stack([captured["key"][layer][0] for layer in layers], dim=1)  # (P, L', H)
    values = torch.stack([captured["value"][layer][0] for layer in layers], dim=1)  # (P, L', H)
    return torch.stack([keys, values], dim=2).reshape(len(token_ids), -1)  # (P, L', 2, H) -> (P, 2·L'·H)


def fit_to(encoder: PrefixEncoder, target: torch.Tensor) -> float:
    """Fit the projection encoder's output to `target` (P, 2·L·H) by MSE; returns the final relative error."""
    optimizer = torch.optim.Adam(encoder.parameters(), lr=FIT_LR)
    with torch.enable_grad():
        for _ in range(FIT_STEPS):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(encoder(), target)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return float((encoder() - target).norm() / target.norm())


def sample_word_ids(config, count: int, tokenizer_path: str | None = None) -> torch.Tensor:
    """`count` distinct vocabulary ids drawn with the global RNG (seeded by --seed). With a local tokenizer: whole
    alphabetic words of 2+ letters (no sub-word pieces, special or unused tokens); else any id but the config's
    special ones."""
    candidates = None
    if tokenizer_path and os.path.isdir(tokenizer_path):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        special = set(tokenizer.all_special_ids)
        pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        candidates = [
            i
            for i, piece in enumerate(pieces)
            if i not in special
            and i < config.vocab_size
            and len(w := piece.lstrip("Ġ▁")) >= 2
            and w.isalpha()
        ]
    if not candidates:
        special = {getattr(config, f"{n}_token_id", None) for n in ("pad", "bos", "eos", "sep", "cls", "unk")}
        candidates = [i for i in range(config.vocab_size) if i not in special]
    if len(candidates) < count:
        raise ValueError(
            f"--prefix_init tokens needs {count} distinct words, the vocabulary offers {len(candidates)}"
        )
    order = torch.randperm(len(candidates))[:count]
    return torch.tensor([candidates[i] for i in order.tolist()])
