"""P-tuning v2 as a method (model/methods.py): per-layer key/value prefixes from a PrefixEncoder, routed into the
frozen backbone's attention by the backbone's one PrefixInjector (model/injection.py).

Alone (training, evaluation): every row of a batch gets the model's own prefix, expanded (not copied).
Served (model/multi_adapter.py): every adapter's per-layer keys/values are stacked once into a bank
(layers, adapters, heads, P_max, d), zero-padded behind each adapter's own P. At each layer the injector takes the
rows' slices of the bank by a per-row gather, with a (rows, P) mask that closes the padded slots and the layers an
adapter has no prefix in (--prefix_layers). Real tokens sit at positions shifted by their own adapter's P.
Both check after the forward that attention took every prefix it was given (`check_consumed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from model.backbones import get_backbone, position_room, row_position_ids, shifted_position_ids
from model.config import PTuningError, parse_layers
from model.injection import LayerPrefixes, PrefixInjector
from model.methods import Method, backbone_inputs, register, too_long
from model.prefix_encoder import PrefixEncoder


def check_consumed(config, consumed: int, expected: int) -> None:
    """A backbone whose attention never takes the prefix would otherwise train (or serve) a prefix that does nothing."""
    if consumed != expected:
        raise PTuningError(
            f"the {config.model_type} backbone's attention took {consumed} of {expected} layer prefixes in this "
            "forward: its attention does not route through the prefix injector (model/injection.py); add or fix "
            "its row in model/backbones.py."
        )


@dataclass
class PrefixBank:
    """Every prefix adapter's per-layer prefixes: keys/values (L, A, heads, P_max, d) zero-padded behind each P,
    valid (L, A, P_max) bool (the slots and layers an adapter has), lengths (A,) its P, shift (A,) bool its
    --shift_positions; `injector` the backbone's."""

    keys: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor
    lengths: torch.Tensor
    shift: torch.Tensor
    injector: PrefixInjector


class GatheredPrefixes(LayerPrefixes):
    """Per layer, the rows' own prefixes gathered from the bank when attention asks for that layer (one layer's
    gathered copy alive at a time)."""

    def __init__(self, bank: PrefixBank, rows: torch.Tensor, P: int):
        super().__init__([None] * bank.keys.shape[0])
        self.bank, self.rows, self.P = bank, rows, P

    def expected(self) -> int:
        """The depths at which some row has a prefix slot: what attention must take."""
        valid = self.bank.valid[:, :, : self.P].index_select(1, self.rows)  # (L, R, P)
        return int(valid.flatten(1).any(1).sum())

    def take(self, depth: int):
        # (R, P): the slots each row may attend to
        mask = self.bank.valid[depth, :, : self.P].index_select(0, self.rows)
        if not bool(mask.any()):
            return None  # no row has a prefix at this depth
        self.consumed += 1
        # (A, heads, P, d) -> (R, heads, P, d)
        key = self.bank.keys[depth, :, :, : self.P].index_select(0, self.rows)
        value = self.bank.values[depth, :, :, : self.P].index_select(0, self.rows)
        return key, value, (None if bool(mask.all()) else mask)


@register
class PrefixTuning(Method):
    """Per-layer key/value prefixes from a PrefixEncoder, routed into attention by the PrefixInjector."""

    name = "prefix"
    flags = (
        "pre_seq_len",
        "prefix_projection",
        "prefix_hidden_size",
        "prefix_layers",
        "prefix_init",
        "init_prefix_from",
        "prefix_dropout",
        "shift_positions",
    )
    not_servable = None

    @classmethod
    def resolve(cls, args, config) -> dict:
        return {
            "pre_seq_len": args.pre_seq_len,
            "prefix_projection": bool(args.prefix_projection),
            "prefix_layers": parse_layers(args.prefix_layers, config.num_hidden_layers),
        }

    def __init__(self, host):
        super().__init__(host)
        config = self.config
        self.prompt = host.prefix_encoder = PrefixEncoder(self.method_config, config)
        if getattr(config, "inner_group_num", 1) != 1:
            raise PTuningError(
                f"{config.model_type} with inner_group_num={config.inner_group_num} runs several attention "
                "layers per depth; P-tuning v2 here supports inner_group_num=1 (every released ALBERT)."
            )
        quirks = self.quirks
        attn = self.method_config.attn_implementation
        self.injector = PrefixInjector.attach(host.backbone, quirks.attention, attn, quirks.shared_layers)
        self.dropout = host.dropout  # the model's shared dropout: the prefix's too, unless --prefix_dropout

    def layer_prefixes(self, batch: int, prefix_attention_mask=None) -> list:
        """Per backbone layer (key, value, mask), key/value (B, heads, P, d) (model/prefix_encoder.py)."""
        return self.prompt.layer_prefixes(batch, prefix_attention_mask, self.dropout)

    def encode(self, backbone, inputs: dict, position_ids=None, prefix_attention_mask=None) -> torch.Tensor:
        inputs = backbone_inputs(inputs)
        input_ids = inputs["input_ids"]
        batch, T = input_ids.shape
        P = self.pre_seq_len
        # dropout draws its mask here, before the backbone's own draws
        prefixes = self.layer_prefixes(batch, prefix_attention_mask)
        if position_ids is None and self.method_config.shift_positions:
            room = position_room(self.quirks, self.config)
            if room is not None and P + T > room:
                fix = " or pass --shift_positions False"
                raise too_long(self.config, P, T, room, "shifted by the prefix", fix)
            position_ids = shifted_position_ids(self.quirks, self.config, input_ids, P)
        outputs = backbone(**inputs, position_ids=position_ids, **self.injector.set(prefixes))
        check_consumed(self.config, self.injector.consumed, len(self.method_config.prefix_layers))
        return outputs[0]

    # -- --prefix_init tokens ----------------------------------------------------------------------------------------
    def init_from_tokens(self, backbone, token_ids: torch.Tensor) -> None:
        """The prefix of layer l becomes the frozen backbone's own key and value projections of the words at layer l
        (the words run alone through the backbone, dropout off, positions 0..P-1). With --prefix_projection the MLP is
        fitted to those keys/values (Adam, MSE) starting from the words' word embeddings."""
        encoder = self.prompt
        words = backbone.get_input_embeddings().weight[token_ids].detach()  # (P, E)
        target = token_key_values(backbone, token_ids, self.method_config.prefix_layers)  # (P, 2·L'·H)
        if not encoder.projection:
            encoder.embedding.weight.data.copy_(target)
            return
        if words.shape[1] == encoder.embedding.embedding_dim:
            encoder.embedding.weight.data.copy_(words)
        fit_to(encoder, target)

    # -- serving -----------------------------------------------------------------------------------------------------
    @classmethod
    def stack(cls, backbone, methods: list[PrefixTuning]) -> PrefixBank:
        L, A = backbone.config.num_hidden_layers, len(methods)
        P_max = max(m.pre_seq_len for m in methods)
        heads, d = methods[0].prompt.heads, methods[0].prompt.head_dim
        weight = next(backbone.parameters())
        keys = weight.new_zeros(L, A, heads, P_max, d)
        values = torch.zeros_like(keys)
        valid = torch.zeros(L, A, P_max, dtype=torch.bool, device=weight.device)
        with torch.no_grad():
            for a, method in enumerate(methods):
                for depth, layer_prefix in enumerate(method.layer_prefixes(1)):  # eval: no dropout
                    if layer_prefix is None:
                        continue
                    key, value, _ = layer_prefix  # (1, heads, P, d) each
                    P = key.shape[2]
                    keys[depth, a, :, :P], values[depth, a, :, :P] = key[0], value[0]
                    valid[depth, a, :P] = True
        lengths = torch.tensor([m.pre_seq_len for m in methods], device=weight.device)
        shift = torch.tensor([m.method_config.shift_positions for m in methods], device=weight.device)
        return PrefixBank(keys, values, valid, lengths, shift, methods[0].injector)

    @classmethod
    def encode_rows(cls, backbone, inputs: dict, bank: PrefixBank, rows: torch.Tensor) -> torch.Tensor:
        inputs = backbone_inputs(inputs)
        P_rows = bank.lengths[rows]  # (R,)
        prefixes = GatheredPrefixes(bank, rows, int(P_rows.max()))
        config = backbone.config
        offsets = P_rows * bank.shift[rows]  # (R,): real tokens shifted by P unless --shift_positions False
        positions = row_position_ids(get_backbone(config), config, inputs["input_ids"], offsets)
        outputs = backbone(**inputs, position_ids=positions, **bank.injector.set(prefixes))
        check_consumed(config, prefixes.consumed, prefixes.expected())
        return outputs[0]  # (R, T, H)


# -- --prefix_init tokens: the frozen backbone's keys and values of real words -------------------------------------
# the attention's key / value Linear layers: BERT/RoBERTa/ELECTRA/ALBERT, DeBERTa-v2/v3 (DeBERTa v1 fuses them)
KEY_VALUE_NAMES = {"key": ("key", "key_proj"), "value": ("value", "value_proj")}
FIT_STEPS, FIT_LR = 300, 1e-3


def token_key_values(backbone, token_ids: torch.Tensor, layers: tuple[int, ...]) -> torch.Tensor:
    """The frozen backbone's key and value projections of `token_ids` run alone, laid out as PrefixEncoder's
    output: (P, 2·L'·H) = (P, L', key/value, heads, head_dim) flattened, L' = the prefixed `layers`."""
    config = backbone.config
    captured: dict[str, list[torch.Tensor]] = {"key": [], "value": []}
    hooks = []
    for name, module in backbone.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        for kind, names in KEY_VALUE_NAMES.items():
            if leaf in names and isinstance(module, nn.Linear):
                hooks.append(module.register_forward_hook(lambda m, i, out, k=kind: captured[k].append(out)))
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():  # a plain forward: nothing was set() on the injector for it, so no prefix
            backbone(input_ids=token_ids[None], attention_mask=torch.ones_like(token_ids[None]))
    finally:
        for hook in hooks:
            hook.remove()
        backbone.train(was_training)
    L = config.num_hidden_layers
    if len(captured["key"]) != L or len(captured["value"]) != L:  # ALBERT's shared layer fires once per depth
        raise ValueError(
            f"--prefix_init tokens found {len(captured['key'])} key / {len(captured['value'])} value projections "
            f"for {L} layers of {config.model_type}: it reads the Linear layers {KEY_VALUE_NAMES}; use "
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
