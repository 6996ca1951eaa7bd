"""PTuningModel: a backbone encoder + the trainable prompt of one method, shared by every head (model/heads.py).

Methods (ModelArguments flags):
  prefix   — P-tuning v2: a PrefixEncoder gives every (chosen) layer P extra keys and values; backbone frozen.
  prompt   — shallow prompt tuning: P vectors prepended to the word embeddings only; backbone frozen.
  finetune — neither flag: the whole backbone trains with the head.
The model's state_dict is its checkpoint: only the trainable part (prompt + head) when the backbone is frozen, plus a
small `ptuning_meta` record of the sizes it was built for, which loading checks (wrong backbone -> clear error).
"""

from __future__ import annotations

import json

import torch
from torch import nn

from model.backbones import get_backbone
from model.injection import PrefixInjector
from model.prefix_encoder import PrefixEncoder, PromptEncoder

META_KEY = "ptuning_meta"


class PTuningError(ValueError):
    """A user-fixable problem with the model setup (input too long, checkpoint of another backbone, ...)."""


def parse_layers(spec: str | None, num_layers: int) -> list[int]:
    """'0-5' / '18,20-23' -> sorted 0-based layer indices; None -> every layer."""
    if spec is None:
        return list(range(num_layers))
    layers: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        try:
            layers.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise PTuningError(
                f"--prefix_layers {spec!r}: use layer numbers and ranges like '0-5,8'."
            ) from None
    if not layers or min(layers) < 0 or max(layers) >= num_layers:
        raise PTuningError(f"--prefix_layers {spec!r}: layers must lie in 0..{num_layers - 1}.")
    return sorted(layers)


class PTuningModel(nn.Module):
    _keys_to_ignore_on_save = None  # read by HF Trainer after loading a checkpoint
    accepts_loss_kwargs = False  # losses are means over the batch: HF Trainer scales them for accumulation

    def __init__(
        self,
        backbone: nn.Module,
        method: str,
        pre_seq_len: int = 4,
        prefix_projection: bool = False,
        prefix_hidden_size: int = 512,
        dropout: float = 0.1,
        shift_positions: bool = True,
        prefix_layers: str | None = None,
        attn_implementation: str = "sdpa",
        task_type: str = "",
        prefix_dropout: float | None = None,
    ):
        super().__init__()
        if method not in ("prefix", "prompt", "finetune"):
            raise PTuningError(f"unknown method {method!r}")
        self.backbone, self.config, self.method = backbone, backbone.config, method
        self.quirks = get_backbone(self.config)
        self.pre_seq_len = pre_seq_len if method != "finetune" else 0
        self.shift_positions = shift_positions
        # on the prefix and before the head, as the original's one shared dropout module
        self.dropout = nn.Dropout(dropout)
        # --prefix_dropout: the prefix's own rate; None keeps the shared module above (the original's behaviour)
        self.prefix_dropout = None if prefix_dropout is None else nn.Dropout(prefix_dropout)
        config = self.config
        heads = config.num_attention_heads
        self.head_dim = getattr(config, "attention_head_size", None) or config.hidden_size // heads
        self.prefix_layers = (
            parse_layers(prefix_layers, config.num_hidden_layers) if method == "prefix" else []
        )
        self._meta = {
            "model_type": config.model_type,
            "hidden_size": config.hidden_size,
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": heads,
            "method": method,
            "pre_seq_len": self.pre_seq_len,
            "prefix_projection": bool(prefix_projection and method == "prefix"),
            "prefix_hidden_size": prefix_hidden_size,
            "prefix_layers": self.prefix_layers,
            "task_type": task_type,
            "num_labels": config.num_labels,
        }
        self.injector = None
        if method == "prefix":
            self.prefix_encoder = PrefixEncoder(
                pre_seq_len,
                len(self.prefix_layers),
                heads * self.head_dim,
                config.hidden_size,
                prefix_projection,
                prefix_hidden_size,
            )
            if getattr(config, "inner_group_num", 1) != 1:
                raise PTuningError(
                    f"{config.model_type} with inner_group_num={config.inner_group_num} runs several attention "
                    "layers per depth; P-tuning v2 here supports inner_group_num=1 (every released ALBERT)."
                )
            self.injector = PrefixInjector(
                backbone, self.quirks.attention, attn_implementation, self.quirks.shared_layers
            )
        elif method == "prompt":
            # word-embedding width (ALBERT/ELECTRA embed narrower than hidden_size)
            self.prompt_encoder = PromptEncoder(pre_seq_len, backbone.get_input_embeddings().embedding_dim)
        if method != "finetune":
            backbone.requires_grad_(False)

    # -- initialisation: N(0, initializer_range), biases 0, as HF init gave the original's new modules ----------
    def init_new_weights(self) -> None:
        std = self.config.initializer_range
        for name, module in self.named_modules():
            if name == "backbone" or name.startswith("backbone."):
                continue
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    # -- the encoder pass every head shares ------------------------------------------------------------------------
    def layer_prefixes(self, batch: int, prefix_attention_mask=None) -> list | None:
        """Per backbone layer: (key, value, mask) with key/value (B, heads, P, d) expanded, not copied; or None."""
        P, heads, d = self.pre_seq_len, self.config.num_attention_heads, self.head_dim
        drop = self.dropout if self.prefix_dropout is None else self.prefix_dropout
        prefix = drop(self.prefix_encoder())  # (P, 2·L'·heads·d)
        prefix = prefix.view(P, len(self.prefix_layers), 2, heads, d)  # (P, L', key/value, heads, d)
        prefix = prefix.permute(1, 2, 3, 0, 4)  # (L', 2, heads, P, d)
        per_layer: list = [None] * self.config.num_hidden_layers
        for i, layer in enumerate(self.prefix_layers):
            key, value = prefix[i, 0], prefix[i, 1]  # (heads, P, d)
            per_layer[layer] = (
                key.expand(batch, heads, P, d),
                value.expand(batch, heads, P, d),
                prefix_attention_mask,
            )
        return per_layer

    def position_ids(self, input_ids, T: int, batch: int, device):
        """Absolute positions of the real tokens, shifted by P as the original (transformers 4.11) ran them."""
        style, P = self.quirks.position_style, self.pre_seq_len
        limit = getattr(self.config, "max_position_embeddings", None)
        if style == "padding_offset":
            pad = self.config.pad_token_id
            if limit is not None and P + T + pad + 1 > limit:
                raise PTuningError(self._too_long(P, T, limit - pad - 1))
            mask = input_ids.ne(pad).int()  # (B, T)
            return (torch.cumsum(mask, dim=1) + P) * mask + pad  # pads keep padding_idx
        if style == "absolute":
            if limit is not None and P + T > limit:
                raise PTuningError(self._too_long(P, T, limit))
            return torch.arange(P, P + T, device=device).expand(batch, T)
        return None

    def _too_long(self, P: int, T: int, room: int) -> str:
        how = "shifted by the prefix" if self.method == "prefix" else "after the prompt"
        fix = " or pass --shift_positions False" if self.method == "prefix" else ""
        return (
            f"pre_seq_len {P} + sequence length {T} = {P + T} exceeds the {room} positions of "
            f"{self.config.model_type} (real tokens sit at positions {how}): lower --max_seq_length or "
            f"--pre_seq_len{fix}."
        )

    def encode(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        prefix_attention_mask=None,
    ) -> torch.Tensor:
        """Backbone hidden states of the real tokens: (B, T, H)."""
        batch, T = input_ids.shape
        if self.method == "prompt":
            return self._encode_with_prompt(input_ids, attention_mask, token_type_ids)
        extra = {}
        if self.method == "prefix":
            extra = self.injector.set(self.layer_prefixes(batch, prefix_attention_mask))
            if position_ids is None and self.shift_positions:
                position_ids = self.position_ids(input_ids, T, batch, input_ids.device)
        outputs = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            **extra,
        )
        if self.method == "prefix" and self.injector.consumed != len(self.prefix_layers):
            # a backbone whose attention never takes the prefix would otherwise train a prefix that does nothing
            raise PTuningError(
                f"the {self.config.model_type} backbone's attention took {self.injector.consumed} of "
                f"{len(self.prefix_layers)} layer prefixes in this forward: its attention does not route through "
                "the prefix injector (model/injection.py); add or fix its row in model/backbones.py."
            )
        return outputs[0]

    def _encode_with_prompt(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        # The original ran the whole embedding layer on the tokens and then again on [prompt; embeddings] (its issue
        # #47). Here the prompt joins the WORD embeddings and the embedding layer (positions, types, LayerNorm) runs
        # once over [prompt; tokens], as Lester et al. and the maintainer's reply on #47 describe.
        batch, T = input_ids.shape
        P = self.pre_seq_len
        limit = getattr(self.config, "max_position_embeddings", None)
        offset = self.config.pad_token_id + 1 if self.quirks.position_style == "padding_offset" else 0
        if limit is not None and self.quirks.position_style != "relative" and P + T + offset > limit:
            raise PTuningError(self._too_long(P, T, limit - offset))
        words = self.backbone.get_input_embeddings()(input_ids)  # (B, T, E)
        prompt = self.prompt_encoder().to(words.dtype).unsqueeze(0).expand(batch, -1, -1)  # (B, P, E)
        ones = torch.ones(batch, P, dtype=torch.long, device=input_ids.device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is not None:
            token_type_ids = torch.cat([torch.zeros_like(ones), token_type_ids], dim=1)  # (B, P + T)
        outputs = self.backbone(
            inputs_embeds=torch.cat([prompt, words], dim=1),  # (B, P + T, E)
            attention_mask=torch.cat([ones, attention_mask.long()], dim=1),
            token_type_ids=token_type_ids,
        )
        return outputs[0][:, P:]  # (B, T, H): the real tokens

    # -- checkpoints: the trainable part only, with the sizes it was built for -------------------------------------
    def _saved(self, name: str) -> bool:
        return self.method == "finetune" or not (name == "backbone" or name.startswith("backbone."))

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        full = super().state_dict(prefix=prefix, keep_vars=keep_vars)
        out = {k: v for k, v in full.items() if self._saved(k[len(prefix) :])}
        out[prefix + META_KEY] = torch.tensor(
            list(json.dumps(self._meta, sort_keys=True).encode()), dtype=torch.uint8
        )
        if destination is not None:
            destination.update(out)
            return destination
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        state_dict = dict(state_dict)
        meta = state_dict.pop(META_KEY, None)
        if meta is None:
            raise PTuningError(
                "not a P-tuning checkpoint (no ptuning_meta record): save it with this project."
            )
        saved = json.loads(bytes(meta.tolist()).decode())
        diffs = {k: (saved.get(k), v) for k, v in self._meta.items() if saved.get(k) != v}
        if diffs:
            lines = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in sorted(diffs.items()))
            raise PTuningError(
                f"this checkpoint was trained for another backbone or setting ({lines}); load it onto "
                "the backbone and flags it was trained with."
            )
        expected = {k for k in super().state_dict() if self._saved(k)}
        missing = sorted(expected - state_dict.keys())
        unexpected = sorted(state_dict.keys() - expected)
        if strict and (missing or unexpected):
            raise PTuningError(f"checkpoint mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        return type(result)(missing, [k for k in result.unexpected_keys])

    # -- HF Trainer surfaces ---------------------------------------------------------------------------------------
    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs):
        self.backbone.activation_checkpointing_enable(
            activation_checkpointing_kwargs=activation_checkpointing_kwargs or {"use_reentrant": False},
            **kwargs,
        )

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None, **kwargs):
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameter count (HF's signature: the Trainer calls it for its FLOP estimate)."""
        skip = set()
        if exclude_embeddings:
            skip = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        return sum(
            p.numel()
            for p in self.parameters()
            if (p.requires_grad or not only_trainable) and id(p) not in skip
        )
