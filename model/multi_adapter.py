"""One frozen backbone, many trained adapters, and batches that mix them.

`MultiAdapterModel(backbone)` holds the backbone once; `add(name, model)` attaches a trained PTuningFor<Head> built on
that same backbone object (its prefix/prompt and head are its own). An adapter is found by its index (`adapter(i)`)
or by the user's name (`named(name)`, any string: a search.sh run folder name holds dots); its submodule key is
"adapter<i>", since torch refuses module names with ".". A forward takes rows of token ids and, per row,
the index of its adapter, and runs ONE encoder pass in which every row sees only its own adapter's prompt:

- prefix adapters (P-tuning v2): every adapter's per-layer keys/values are stacked once into a bank
  (layers, adapters, heads, P_max, d), zero-padded behind each adapter's own P. At each layer the injector takes the
  rows' slices of the bank by a per-row gather, with a (rows, P) mask that closes the padded slots and the layers an
  adapter has no prefix in (--prefix_layers). Real tokens sit at positions shifted by their own adapter's P.
- prompt adapters (shallow prompt tuning): each row's prompt is left-padded to the batch's longest and the padding is
  masked; positions are given explicitly (prompt 0..P-1, tokens P..), so every row sees exactly its own single-adapter
  input (left padding also keeps DeBERTa's relative distances).
Prefix and prompt rows of one batch run as two encoder passes. Each adapter's head then scores its own rows
(`scores` of model/heads.py). The result equals running each adapter alone (tests/test_multi_adapter.py).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from model.backbones import POSITION_STYLES, shifted_position_ids
from model.config import PTuningError
from model.injection import LayerPrefixes, PrefixInjector


def build_on(backbone: nn.Module, method_config, task_type, num_labels: int) -> nn.Module:
    """A PTuningFor<Head> on `backbone` with its own label count: each adapter keeps its own copy of the config
    (num_labels differs between adapters of one backbone), the backbone's is left as it was."""
    from model.utils import head_class

    config = backbone.config
    saved = config.num_labels
    config.num_labels = num_labels
    try:
        model = head_class(task_type)(backbone, method_config)
        own = copy.copy(config)
    finally:
        config.num_labels = saved
    model.config = own
    return model


class GatheredPrefixes(LayerPrefixes):
    """Per layer, the rows' own prefixes gathered from the bank when attention asks for that layer (one layer's
    gathered copy alive at a time)."""

    def __init__(self, keys, values, valid, rows: torch.Tensor, P: int):
        super().__init__([None] * keys.shape[0])
        self.keys, self.values, self.valid, self.rows, self.P = keys, values, valid, rows, P

    def take(self, depth: int):
        mask = self.valid[depth, :, : self.P].index_select(
            0, self.rows
        )  # (R, P) slots this row may attend to
        if not bool(mask.any()):
            return None  # no row has a prefix at this depth
        self.consumed += 1
        key = self.keys[depth, :, :, : self.P].index_select(
            0, self.rows
        )  # (A, heads, P, d) -> (R, heads, P, d)
        value = self.values[depth, :, :, : self.P].index_select(0, self.rows)
        return key, value, (None if bool(mask.all()) else mask)


class MultiAdapterModel(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone, self.config = backbone, backbone.config
        self.adapters = nn.ModuleDict()  # "adapter<i>" -> the adapter of index i (torch keys hold no ".")
        self.names: list[str] = []  # adapter index -> the user's name, in attach order
        self.injector: PrefixInjector | None = None
        self._bank = None  # (keys, values, valid) of the prefix adapters, built on first use after an attach

    def add(self, name: str, model: nn.Module) -> int:
        """Attach a trained adapter built on this model's backbone; returns its index."""
        if model.backbone is not self.backbone:
            raise PTuningError(f"adapter {name!r} is built on another backbone object: build it on this one.")
        if model.method not in ("prefix", "prompt"):
            raise PTuningError(
                f"adapter {name!r} is {model.method}: only --prefix and --prompt checkpoints share a backbone."
            )
        if name in self.names:
            raise PTuningError(f"adapter name {name!r} is used twice: give each checkpoint its own name.")
        model.eval()
        self.adapters[f"adapter{len(self.names)}"] = model
        self.names.append(name)
        if model.injector is not None:
            self.injector = model.injector  # every prefix adapter's injector routes the same backbone
        self._bank = None
        return len(self.names) - 1

    def adapter(self, index: int) -> nn.Module:
        return self.adapters[f"adapter{index}"]

    def named(self, name: str) -> nn.Module:
        """The adapter attached as `name`."""
        return self.adapter(self.names.index(name))

    # -- the prefix bank -------------------------------------------------------------------------------------------
    def bank(self):
        """(keys, values, valid): keys/values (L, A, heads, P_max, d), valid (L, A, P_max) bool, over all adapters
        (a prompt adapter's rows stay all-closed)."""
        if self._bank is not None:
            return self._bank
        L = self.config.num_hidden_layers
        prefix_models = [
            self.adapter(i) for i in range(len(self.names)) if self.adapter(i).method == "prefix"
        ]
        P_max = max([m.pre_seq_len for m in prefix_models], default=1)
        heads = next((m.prefix_encoder.heads for m in prefix_models), 1)
        d = next((m.prefix_encoder.head_dim for m in prefix_models), 1)
        weight = next(self.backbone.parameters())
        keys = weight.new_zeros(L, len(self.names), heads, P_max, d)
        values = torch.zeros_like(keys)
        valid = torch.zeros(L, len(self.names), P_max, dtype=torch.bool, device=weight.device)
        with torch.no_grad():
            for a in range(len(self.names)):
                model = self.adapter(a)
                if model.method != "prefix":
                    continue
                for depth, layer_prefix in enumerate(model.layer_prefixes(1)):  # eval: no dropout
                    if layer_prefix is None:
                        continue
                    key, value, _ = layer_prefix  # (1, heads, P, d) each
                    P = key.shape[2]
                    keys[depth, a, :, :P], values[depth, a, :, :P] = key[0], value[0]
                    valid[depth, a, :P] = True
        self._bank = (keys, values, valid)
        return self._bank

    # -- the encoder pass ------------------------------------------------------------------------------------------
    def encode(self, input_ids, attention_mask, token_type_ids, row_adapter: torch.Tensor) -> torch.Tensor:
        """Hidden states of the real tokens (R, T, H); row r runs with adapter `row_adapter[r]`."""
        methods = [self.adapter(int(a)).method for a in range(len(self.names))]
        is_prefix = torch.tensor([m == "prefix" for m in methods], device=row_adapter.device)[row_adapter]
        out = None
        for rows, encode in ((is_prefix, self._encode_prefix), (~is_prefix, self._encode_prompt)):
            index = rows.nonzero().squeeze(1)  # (R',)
            if index.numel() == 0:
                continue
            pick = lambda x, i=index: None if x is None else x.index_select(0, i)  # noqa: E731
            hidden = encode(pick(input_ids), pick(attention_mask), pick(token_type_ids), row_adapter[index])
            if out is None:
                out = hidden.new_empty(input_ids.shape[0], *hidden.shape[1:])  # (R, T, H)
            out.index_copy_(0, index, hidden)
        return out

    def _row_lengths(self, row_adapter) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row: its adapter's P and whether its real tokens are shifted by P (--shift_positions)."""
        P = torch.tensor(
            [self.adapter(a).pre_seq_len for a in range(len(self.names))], device=row_adapter.device
        )
        shift = torch.tensor(
            [self.adapter(a).method_config.shift_positions for a in range(len(self.names))],
            device=row_adapter.device,
        )
        return P[row_adapter], shift[row_adapter]

    def _token_positions(self, input_ids, offsets: torch.Tensor):
        """Absolute positions of the real tokens, row r shifted by offsets[r]: (R, T), or None (relative)."""
        quirks = self.adapter(0).quirks
        if POSITION_STYLES[quirks.position_style].shifted_ids is None:
            return None
        positions = torch.empty_like(input_ids)
        for P in offsets.unique().tolist():
            rows = (offsets == P).nonzero().squeeze(1)
            positions[rows] = shifted_position_ids(quirks, self.config, input_ids[rows], int(P))
        return positions

    def _encode_prefix(self, input_ids, attention_mask, token_type_ids, row_adapter):
        keys, values, valid = self.bank()
        P_rows, shift = self._row_lengths(row_adapter)
        prefixes = GatheredPrefixes(keys, values, valid, row_adapter, int(P_rows.max()))
        positions = self._token_positions(input_ids, P_rows * shift)
        outputs = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=positions,
            **self.injector.set(prefixes),
        )
        self.injector.set(None)
        return outputs[0]  # (R, T, H)

    def _encode_prompt(self, input_ids, attention_mask, token_type_ids, row_adapter):
        if self.injector is not None:
            self.injector.set(None)  # no prefix in a prompt pass
        R, T = input_ids.shape
        P_rows, _ = self._row_lengths(row_adapter)
        P_max = int(P_rows.max())
        words = self.backbone.get_input_embeddings()(input_ids)  # (R, T, E)
        prompts = words.new_zeros(R, P_max, words.shape[-1])  # (R, P_max, E), left-padded
        for a in row_adapter.unique().tolist():
            rows = (row_adapter == a).nonzero().squeeze(1)
            prompt = self.adapter(a).prompt_encoder().to(words.dtype)  # (P, E)
            prompts[rows, P_max - prompt.shape[0] :] = prompt
        slot = torch.arange(P_max, device=input_ids.device)  # (P_max,)
        first = (P_max - P_rows)[:, None]  # (R, 1): the row's first prompt slot
        open_slots = (slot[None, :] >= first).long()  # (R, P_max)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        positions = self._token_positions(input_ids, P_rows)
        if positions is not None:  # prompt slot k of a row at position offset + k, padding at the offset
            offset = POSITION_STYLES[self.adapter(0).quirks.position_style].offset(self.config)
            prompt_positions = offset + (slot[None, :] - first).clamp(min=0)  # (R, P_max)
            positions = torch.cat([prompt_positions, positions], dim=1)  # (R, P_max + T)
        if token_type_ids is not None:
            token_type_ids = torch.cat(
                [torch.zeros_like(open_slots), token_type_ids], dim=1
            )  # (R, P_max + T)
        outputs = self.backbone(
            inputs_embeds=torch.cat([prompts, words], dim=1),  # (R, P_max + T, E)
            attention_mask=torch.cat([open_slots, attention_mask.long()], dim=1),  # (R, P_max + T)
            token_type_ids=token_type_ids,
            position_ids=positions,
        )
        return outputs[0][:, P_max:]  # (R, T, H): the real tokens

    # -- the heads -------------------------------------------------------------------------------------------------
    def forward(self, input_ids, attention_mask=None, token_type_ids=None, row_adapter=None) -> dict:
        """{adapter index: its head's scores of its rows, in row order} (model/heads.py `scores`: (R_a, labels),
        (R_a, 1) per choice row, (R_a, T, labels) or (R_a, T, 2))."""
        hidden = self.encode(input_ids, attention_mask, token_type_ids, row_adapter)  # (R, T, H)
        out = {}
        for a in row_adapter.unique().tolist():
            rows = (row_adapter == a).nonzero().squeeze(1)
            out[a] = self.adapter(a).scores(hidden.index_select(0, rows))
        return out
