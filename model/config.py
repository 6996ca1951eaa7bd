"""The tuning method's own arguments and its resolved configuration, in the style of PEFT's PrefixTuningConfig.

MethodArguments — the command-line flags of the method (help on every field, checks in __post_init__). ModelArguments
  (arguments.py) can inherit them, so the method's flags live beside the method. A method is chosen by its boolean
  flag (METHOD_FLAGS); none set means fine-tuning. Which of the other fields a method reads is its class's `flags`
  (model/methods.py); a field set for a method that does not read it is refused.
MethodConfig — the frozen, resolved setting one model is built with: built once by `MethodConfig.from_args(args,
  config)` (config: the backbone's HF config; the method class resolves its own fields), kept as
  `model.method_config` and passed whole. Its fields marked {"checkpoint": True} identify a checkpoint
  (model/checkpoint.py compares them when loading).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import ClassVar

PREFIX_INITS = ("normal", "normal1", "tokens", "zeros")  # see model/methods.py Method.initialise


class PTuningError(ValueError):
    """A user-fixable problem with the model setup (input too long, checkpoint of another backbone, ...)."""


@dataclass(kw_only=True)
class MethodArguments:
    # the boolean flags that choose a method, each named as its row in model/methods.py; none set: fine-tuning
    METHOD_FLAGS: ClassVar[tuple[str, ...]] = ("prefix", "prompt", "bitfit")

    prefix: bool = field(
        default=False,
        metadata={"help": "P-tuning v2: deep prompts (key/value prefixes) in every layer."},
    )
    prompt: bool = field(
        default=False,
        metadata={"help": "Shallow prompt tuning baseline (Lester et al.): prompts at the input only."},
    )
    bitfit: bool = field(
        default=False,
        metadata={"help": "BitFit (Ben Zaken et al., 2022): the backbone's bias terms train with the head."},
    )
    pre_seq_len: int = field(default=4, metadata={"help": "Prefix / prompt length P."})
    prefix_projection: bool = field(
        default=False,
        metadata={"help": "Reparameterise the prefix with a 2-layer tanh MLP (prefix-tuning style)."},
    )
    prefix_hidden_size: int = field(
        default=512, metadata={"help": "Hidden size of the --prefix_projection MLP."}
    )
    shift_positions: bool = field(
        default=True,
        metadata={
            "help": "Run real tokens at absolute positions P..P+T-1 as the original (transformers 4.11) did, so its "
            "hyper-parameters transfer. `--shift_positions False` uses positions 0..T-1."
        },
    )
    prefix_layers: str | None = field(
        default=None,
        metadata={
            "help": "Prompt depth ablation: layers that get a prefix, e.g. '0-5' or '18,19,20,21,22,23' (0-based). "
            "Default: every layer."
        },
    )
    prefix_init: str = field(
        default="normal",
        metadata={
            "help": "How the prefix/prompt starts: 'normal' = N(0, initializer_range) (the original); 'normal1' = "
            "N(0, 1); 'tokens' = the frozen backbone's own keys/values of P sampled vocabulary words (Li & Liang "
            "2021; prompt tuning: their word embeddings); 'zeros' = exactly 0 (with --prefix_projection: the MLP's "
            "last layer, weight and bias, is 0). See model/methods.py."
        },
    )
    init_prefix_from: str | None = field(
        default=None,
        metadata={
            "help": "Start TRAINING from another run's prefix/prompt (a run folder stands for its best_model/): "
            "same backbone size, method, --pre_seq_len and prefix layout (--prefix_projection, "
            "--prefix_hidden_size, --prefix_layers) required; its head too when its labels are this task's "
            "(same names, same order), else a new head. Unlike --ptuning_checkpoint, which loads a whole trained "
            "model for --do_eval/--do_predict and requires the same labels and flags. See model/transfer.py."
        },
    )
    prefix_dropout: float | None = field(
        default=None,
        metadata={
            "help": "Dropout on the prefix only (--prefix). Default: --hidden_dropout_prob, as the original's one "
            "shared dropout."
        },
    )

    def __post_init__(self):
        chosen = [name for name in self.METHOD_FLAGS if getattr(self, name)]
        if len(chosen) > 1:
            raise ValueError(f"{' and '.join('--' + n for n in chosen)} are exclusive: pick one method.")
        reads = self.method_class.flags
        if "pre_seq_len" in reads and self.pre_seq_len < 1:
            raise ValueError(f"--pre_seq_len must be >= 1 with --{self.method}, got {self.pre_seq_len}.")
        if self.prefix_hidden_size < 1:
            raise ValueError(f"--prefix_hidden_size must be >= 1, got {self.prefix_hidden_size}.")
        self._only_for("prefix_layers", None)
        if self.prefix_init not in PREFIX_INITS:
            raise ValueError(
                f"--prefix_init must be one of {', '.join(PREFIX_INITS)}, got {self.prefix_init!r}."
            )
        self._only_for("prefix_init", "normal")
        self._only_for("init_prefix_from", None)
        if self.init_prefix_from is not None:
            self._check_init_prefix_from()
        self._only_for("prefix_dropout", None)
        if self.prefix_dropout is not None and not 0.0 <= self.prefix_dropout < 1.0:
            raise ValueError(f"--prefix_dropout must be in [0, 1), got {self.prefix_dropout}.")

    def _check_init_prefix_from(self) -> None:
        """A run folder stands for its best_model/ (recorded resolved in args.json); it must hold a checkpoint."""
        from model.checkpoint import resolve_checkpoint_dir  # model/checkpoint.py imports this module

        if self.prefix_init != "normal":
            raise ValueError(
                f"--prefix_init {self.prefix_init} and --init_prefix_from both say where the prefix starts: pass one."
            )
        self.init_prefix_from = resolve_checkpoint_dir(self.init_prefix_from)
        if not os.path.isfile(os.path.join(self.init_prefix_from, "model.safetensors")):
            raise FileNotFoundError(
                f"--init_prefix_from {self.init_prefix_from!r} holds no model.safetensors: point it at a run folder "
                "or its best_model/ written by run.py."
            )

    def _only_for(self, flag: str, default) -> None:
        """Refuse --flag changed from its default for a method that does not read it."""
        if getattr(self, flag) != default and flag not in self.method_class.flags:
            from model.methods import METHODS

            users = " or ".join(f"--{name}" for name in self.METHOD_FLAGS if flag in METHODS[name].flags)
            raise ValueError(f"--{flag} only applies to {users}.")

    @property
    def method(self) -> str:
        """The name of the chosen method ('prefix', 'prompt', ...) or 'finetune' when no method flag is set."""
        return next((name for name in self.METHOD_FLAGS if getattr(self, name)), "finetune")

    @property
    def method_class(self):
        """The chosen method's class in model/methods.py."""
        from model.methods import METHODS  # model/methods.py imports this module

        return METHODS[self.method]

    @property
    def trains_backbone(self) -> bool:
        """Whether the chosen method trains backbone weights (fine-tuning, BitFit): then they stay float32."""
        return self.method_class.trains_backbone


def parse_layers(spec: str | None, num_layers: int) -> tuple[int, ...]:
    """'0-5' / '18,20-23' -> sorted 0-based layer indices; None -> every layer."""
    if spec is None:
        return tuple(range(num_layers))
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
    return tuple(sorted(layers))


def _id(**metadata):  # a field that identifies a checkpoint
    return field(metadata={"checkpoint": True, **metadata})


@dataclass(frozen=True)
class MethodConfig:
    """One model's method, resolved against its backbone. Sizes of the backbone come from its HF config, not here."""

    method: str = _id(help="its name in model/methods.py METHODS: 'finetune', 'prefix', 'prompt', ...")
    pre_seq_len: int = _id(help="P, the prefix/prompt length; 0 when fine-tuning")
    prefix_projection: bool = _id(help="prefix through the 2-layer tanh MLP (prefix method only)")
    prefix_hidden_size: int = _id(help="hidden size of that MLP")
    prefix_layers: tuple[int, ...] = _id(help="0-based depths that get a prefix; () unless prefix")
    prefix_dropout: float | None = None  # the prefix's own dropout; None: the shared `dropout` (the original)
    prefix_init: str = "normal"  # model/prefix_encoder.py init_prompt
    dropout: float = 0.1  # on the prefix and before the head (--hidden_dropout_prob)
    shift_positions: bool = True  # real tokens at positions P..P+T-1, as the original
    attn_implementation: str = "sdpa"  # the stock kernel the prefix is injected into: 'sdpa' or 'eager'

    @classmethod
    def from_args(cls, args, config) -> MethodConfig:
        """From ModelArguments (any object with MethodArguments' fields, `method`, `hidden_dropout_prob` and
        `attn_implementation`) for a backbone with HF config `config`; the method's class resolves P, the projection
        and the prefixed layers (model/methods.py `resolve`)."""
        from model.methods import METHODS  # model/methods.py imports this module

        return cls(
            method=args.method,
            prefix_hidden_size=args.prefix_hidden_size,
            prefix_dropout=args.prefix_dropout,
            prefix_init=args.prefix_init,
            dropout=args.hidden_dropout_prob,
            shift_positions=args.shift_positions,
            attn_implementation=args.attn_implementation,
            **METHODS[args.method].resolve(args, config),
        )

    @classmethod
    def from_record(cls, record: dict, **overrides) -> MethodConfig:
        """From a checkpoint's "method_config" record (model/checkpoint.py; JSON lists back to tuples)."""
        return cls(**{**record, "prefix_layers": tuple(record["prefix_layers"]), **overrides})

    def checkpoint_fields(self) -> dict:
        """The fields that identify a checkpoint, JSON-ready."""
        out = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("checkpoint")
        }
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
