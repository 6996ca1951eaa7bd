"""One frozen backbone, many trained adapters, and batches that mix them.

`MultiAdapterModel(backbone)` holds the backbone once; `add(name, model)` attaches a trained PTuningFor<Head> built on
that same backbone object (its method's modules and head are its own). An adapter is found by its index (`adapter(i)`)
or by the user's name (`named(name)`, any string: a search.sh run folder name holds dots); its submodule key is
"adapter<i>", since torch refuses module names with ".". A forward takes rows of token ids and, per row, the index of
its adapter. The rows are grouped by their adapter's method class, and each group runs ONE encoder pass that its
method runs (model/methods.py): `stack(backbone, methods)` builds the group's bank once after an attach, and
`encode_rows(backbone, inputs, bank, rows)` gives every row exactly what its adapter alone would (P-tuning v2: a
per-row gather from a bank of prefixes; prompt tuning: left-padded prompts). Each adapter's head then scores its own
rows (`scores` of model/heads.py). The result equals running each adapter alone (tests/test_multi_adapter.py).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from model.config import PTuningError


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


class MultiAdapterModel(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone, self.config = backbone, backbone.config
        self.adapters = nn.ModuleDict()  # "adapter<i>" -> the adapter of index i (torch keys hold no ".")
        self.names: list[str] = []  # adapter index -> the user's name, in attach order
        self._banks: dict[type, object] = {}  # method class -> its bank, built on first use after an attach

    def add(self, name: str, model: nn.Module) -> int:
        """Attach a trained adapter built on this model's backbone; returns its index."""
        if model.backbone is not self.backbone:
            raise PTuningError(f"adapter {name!r} is built on another backbone object: build it on this one.")
        why = type(model.method_impl).not_servable
        if why is not None:
            raise PTuningError(f"adapter {name!r} is {why}.")
        if name in self.names:
            raise PTuningError(f"adapter name {name!r} is used twice: give each checkpoint its own name.")
        model.eval()
        self.adapters[f"adapter{len(self.names)}"] = model
        self.names.append(name)
        self._banks = {}
        return len(self.names) - 1

    def adapter(self, index: int) -> nn.Module:
        return self.adapters[f"adapter{index}"]

    def named(self, name: str) -> nn.Module:
        """The adapter attached as `name`."""
        return self.adapter(self.names.index(name))

    def groups(self) -> dict[type, list[int]]:
        """{method class: the indices of its adapters}, in attach order."""
        out: dict[type, list[int]] = {}
        for a in range(len(self.names)):
            out.setdefault(type(self.adapter(a).method_impl), []).append(a)
        return out

    def bank_of(self, method_class: type, members: list[int]):
        """The bank of one method class's adapters (`members`), as its `stack` builds it."""
        if method_class not in self._banks:
            methods = [self.adapter(a).method_impl for a in members]
            self._banks[method_class] = method_class.stack(self.backbone, methods)
        return self._banks[method_class]

    def bank(self) -> list[torch.Tensor]:
        """Every tensor the banks hold (what serving keeps besides the modules; benchmarks/serving.py counts it)."""
        banks = [self.bank_of(cls, members) for cls, members in self.groups().items()]
        return [t for bank in banks for t in vars(bank).values() if isinstance(t, torch.Tensor)]

    # -- the encoder pass ------------------------------------------------------------------------------------------
    def encode(self, input_ids, attention_mask, token_type_ids, row_adapter: torch.Tensor) -> torch.Tensor:
        """Hidden states of the real tokens (R, T, H); row r runs with adapter `row_adapter[r]`."""
        groups = self.groups()
        group_of = torch.empty(len(self.names), dtype=torch.long)  # adapter -> its group
        local = torch.empty(len(self.names), dtype=torch.long)  # adapter -> its index in its group's bank
        for g, members in enumerate(groups.values()):
            group_of[members], local[members] = g, torch.arange(len(members))
        row_group = group_of.to(row_adapter.device)[row_adapter]  # (R,)
        local = local.to(row_adapter.device)
        out = None
        for g, (method_class, members) in enumerate(groups.items()):
            index = (row_group == g).nonzero().squeeze(1)  # (R',)
            if index.numel() == 0:
                continue
            pick = lambda x, i=index: None if x is None else x.index_select(0, i)  # noqa: E731
            inputs = {
                "input_ids": pick(input_ids),
                "attention_mask": pick(attention_mask),
                "token_type_ids": pick(token_type_ids),
            }
            bank = self.bank_of(method_class, members)
            hidden = method_class.encode_rows(self.backbone, inputs, bank, local[row_adapter[index]])
            if out is None:
                out = hidden.new_empty(input_ids.shape[0], *hidden.shape[1:])  # (R, T, H)
            out.index_copy_(0, index, hidden)
        return out

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
