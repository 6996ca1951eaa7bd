"""PTuningModel: a backbone encoder + one tuning method, shared by every head (model/heads.py).

The method is a MethodConfig (model/config.py), kept whole as `method_config`, and the method object its class in
model/methods.py builds for this model (`method_impl`): it owns the method's modules (registered here under their
checkpoint names), says what trains and what a checkpoint saves, initialises its prompt and runs the encoder pass.
The model's state_dict is its checkpoint (model/checkpoint.py): the saved part plus a `ptuning_meta` record that
loading checks.
"""

from __future__ import annotations

from torch import nn

from model import checkpoint
from model.backbones import get_backbone
from model.config import MethodConfig, PTuningError  # PTuningError is also imported from here by run.py
from model.methods import METHODS, in_backbone


def init_new_weights(module: nn.Module, pretrained: set[int], std: float) -> None:
    """N(0, std) weights and zero biases for every Linear/Embedding of `module` whose weight is not among the
    `pretrained` parameter ids (the backbone's): what HF's init gave the original's new modules."""
    for sub in module.modules():
        new = getattr(sub, "weight", None) is not None and id(sub.weight) not in pretrained
        if new and isinstance(sub, (nn.Linear, nn.Embedding)):
            nn.init.normal_(sub.weight, mean=0.0, std=std)
            if getattr(sub, "bias", None) is not None:
                nn.init.zeros_(sub.bias)


class PTuningModel(nn.Module):
    _keys_to_ignore_on_save = None  # read by HF Trainer after loading a checkpoint
    accepts_loss_kwargs = False  # losses are means over the batch: HF Trainer scales them for accumulation
    task_type = ""  # the head, recorded in checkpoints

    def __init__(self, backbone: nn.Module, method_config: MethodConfig):
        super().__init__()
        if method_config.method not in METHODS:
            raise PTuningError(
                f"unknown method {method_config.method!r}; known: {', '.join(sorted(METHODS))}"
            )
        self.backbone, self.config, self.method_config = backbone, backbone.config, method_config
        self.quirks = get_backbone(self.config)
        # on the prefix and before the head, as the original's one shared dropout module
        self.dropout = nn.Dropout(method_config.dropout)
        self._pretrained = {id(p) for p in backbone.parameters()}  # what post_init must not re-initialise
        self.method_impl = METHODS[method_config.method](self)  # adds its modules (before the head's)

    @property
    def method(self) -> str:
        return self.method_config.method

    @property
    def pre_seq_len(self) -> int:
        return self.method_config.pre_seq_len

    def post_init(self) -> None:
        """Called by each head once its layers exist: initialise the new weights, then set what trains."""
        self.init_new_weights()
        self.train_head_only(False)

    # -- the head: what the task adds after the encoder (--head_learning_rate, --head_warmup_epochs, --init_prefix_from)
    def head_names(self) -> set[str]:
        """Names of the head's parameters (as in named_parameters() and the checkpoint): everything outside the
        backbone and the method's prompt, e.g. the classifier and DeBERTa's ContextPooler; the backbone's own pooler
        is the backbone's."""
        prompt = self.method_impl.prompt
        prompt_ids = set() if prompt is None else {id(p) for p in prompt.parameters()}
        return {n for n, p in self.named_parameters() if not in_backbone(n) and id(p) not in prompt_ids}

    def train_head_only(self, head_only: bool) -> None:
        """requires_grad: only the head's parameters (`head_only`), or everything the method trains."""
        head = self.head_names()
        for name, param in self.named_parameters():
            param.requires_grad_(self.method_impl.trains(name) and (name in head or not head_only))

    # -- initialisation: N(0, initializer_range), biases 0, as HF init gave the original's new modules ----------
    def init_new_weights(self) -> None:
        init_new_weights(self, self._pretrained, self.config.initializer_range)

    # -- the prefix method's parts, kept for tests/test_backbones.py and benchmarks/gpu_reference.py ----------------
    @property
    def injector(self):
        """The backbone's PrefixInjector when the method routes prefixes through it (model/injection.py), else None."""
        return getattr(self.method_impl, "injector", None)

    def layer_prefixes(self, batch: int, prefix_attention_mask=None) -> list:
        """The prefix method's per-layer (key, value, mask), key/value (B, heads, P, d); model/prefix_tuning.py."""
        return self.method_impl.layer_prefixes(batch, prefix_attention_mask)

    # -- the encoder pass every head shares ------------------------------------------------------------------------

    def encode(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        position_ids=None,
        prefix_attention_mask=None,
    ):
        """Backbone hidden states of the real tokens: (B, T, H)."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.method_impl.encode(self.backbone, inputs, position_ids, prefix_attention_mask)

    # -- checkpoints (model/checkpoint.py) -------------------------------------------------------------------------
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        return checkpoint.state_dict(self, destination, prefix, keep_vars)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return checkpoint.load_state_dict(self, state_dict, strict, assign)

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
