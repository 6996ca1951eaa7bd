"""The tuning methods: one class each, registered under its name; one object of it per model.

  finetune — no method flag: the whole backbone trains with the head.
  prefix   — P-tuning v2 (model/prefix_tuning.py): a PrefixEncoder gives every (chosen) layer P extra keys and
             values; backbone frozen.
  prompt   — shallow prompt tuning: P vectors prepended to the word embeddings only; backbone frozen.
  bitfit   — BitFit: the backbone's bias terms train with the head; the forward is the backbone's own.

What a method class says for all its models:
  flags, resolve(args, config)     the MethodArguments fields it reads; its MethodConfig fields resolved against the
                                   backbone (model/config.py asks both)
  trains_backbone                  whether backbone weights train (then the backbone cannot be shared or low-precision)
  not_servable                     why adapters of it cannot share one frozen backbone (None: they can, through
  stack(backbone, methods) -> bank, encode_rows(backbone, inputs, bank, rows), model/multi_adapter.py)
What its object (`METHODS[name](model)`, made by PTuningModel before the head) owns for one model:
  __init__(host)                   its modules, registered on the host model under their checkpoint key names
  trains(name), saves(key)         its trainable parameters, its checkpoint keys (model/checkpoint.py)
  initialise(how, backbone)        --prefix_init; `init_from_tokens(backbone, token_ids)` for "tokens"
  encode(backbone, inputs, ...)    its forward: the backbone's hidden states of the real tokens
PTuningModel, MultiAdapterModel, the checkpoint and serving/ ask the method; none of them branches on its name. A new
method is a `Method` subclass decorated with `@register` (here, or in a module imported at the end of this file); its
flag is a boolean field of MethodArguments (model/config.py) named in METHOD_FLAGS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from model.backbones import POSITION_STYLES, get_backbone, position_room, row_position_ids
from model.config import PREFIX_INITS, PTuningError
from model.prefix_encoder import PromptEncoder, sample_word_ids

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make `cls` the method named `cls.name`."""
    METHODS[cls.name] = cls
    return cls


def in_backbone(name: str) -> bool:
    return name == "backbone" or name.startswith("backbone.")


def backbone_inputs(inputs: dict) -> dict:
    """input_ids / attention_mask / token_type_ids of `inputs` (each may be None)."""
    return {k: inputs.get(k) for k in ("input_ids", "attention_mask", "token_type_ids")}


class Method:
    """One tuning method of one model. The default adds nothing to a frozen backbone's forward."""

    name: ClassVar[str] = ""
    flags: ClassVar[tuple[str, ...]] = ()  # MethodArguments fields it reads besides its own flag
    trains_backbone: ClassVar[bool] = False
    not_servable: ClassVar[str | None] = "a model whose method has no batched forward (stack/encode_rows)"

    @classmethod
    def resolve(cls, args, config) -> dict:
        """Its MethodConfig fields from MethodArguments `args` for a backbone of HF config `config`: no prompt."""
        return {"pre_seq_len": 0, "prefix_projection": False, "prefix_layers": ()}

    def __init__(self, host):
        """Build the method's modules for `host` (a PTuningModel whose head is not built yet)."""
        self.method_config, self.config, self.quirks = host.method_config, host.config, host.quirks
        self.prompt: nn.Module | None = None  # the module of its P trainable vectors, if it has one

    @property
    def pre_seq_len(self) -> int:
        return self.method_config.pre_seq_len

    def trains(self, name: str) -> bool:
        """Whether parameter `name` (as in model.named_parameters()) trains: everything outside the pretrained
        backbone. A method that adapts weights inside the backbone adds its own names here."""
        return not in_backbone(name)

    def saves(self, key: str) -> bool:
        """Whether state_dict key `key` is in a checkpoint (model/checkpoint.py): what trains."""
        return self.trains(key)

    # -- --prefix_init (PREFIX_INITS in model/config.py) ----------------------------------------------------------
    # "normal"  the original's N(0, config.initializer_range), applied with the head by PTuningModel.init_new_weights;
    #           nothing is changed here (no random number is drawn), so the default is bit-identical.
    # "normal1" N(0, 1) (the scale an independent prefix-tuning implementation starts from). With --prefix_projection
    #           only the embedding fed to the MLP is redrawn; the MLP keeps its N(0, initializer_range) weights.
    # "tokens"  real tokens, as Li & Liang (2021) initialise prefix-tuning with real words: P vocabulary words sampled
    #           with the seeded global RNG (`sample_word_ids`), then the method's `init_from_tokens`.
    # "zeros"   exactly 0: the prompt's table, or with --prefix_projection the MLP's last layer (the encoder's `zero_`),
    #           so training starts from the backbone's own output; no random number is drawn.
    def initialise(self, how: str, backbone, token_ids=None, tokenizer_path: str | None = None) -> None:
        """Re-initialise the method's prompt according to --prefix_init, after the head's init_new_weights.
        `token_ids` (P,): the words for "tokens" (default: sampled from the vocabulary of the tokenizer at
        `tokenizer_path`); kept as `init_token_ids` on the prompt module."""
        if how not in PREFIX_INITS:
            raise ValueError(f"--prefix_init must be one of {', '.join(PREFIX_INITS)}, got {how!r}")
        if how == "normal":
            return
        if self.prompt is None:
            raise PTuningError(f"--prefix_init {how} needs a method with a prompt, not {self.name!r}")
        if how == "normal1":
            nn.init.normal_(self.prompt.embedding.weight, mean=0.0, std=1.0)
            return
        if how == "zeros":
            self.prompt.zero_()
            return
        if token_ids is None:
            token_ids = sample_word_ids(self.config, self.pre_seq_len, tokenizer_path)
        self.prompt.init_token_ids = token_ids
        self.init_from_tokens(backbone, token_ids)

    def init_from_tokens(self, backbone, token_ids: torch.Tensor) -> None:
        """Start the prompt from the words `token_ids` (P,) of the frozen backbone."""
        raise PTuningError(f"--prefix_init tokens is not defined for {self.name!r}")

    # -- the forward -----------------------------------------------------------------------------------------------
    def encode(self, backbone, inputs: dict, position_ids=None, prefix_attention_mask=None) -> torch.Tensor:
        """The backbone's hidden states of the real tokens, (B, T, H). `inputs`: input_ids, attention_mask,
        token_type_ids (B, T) (the last two may be None)."""
        return backbone(**backbone_inputs(inputs), position_ids=position_ids)[0]

    # -- serving: rows of many adapters of this method on one shared frozen backbone -------------------------------
    @classmethod
    def stack(cls, backbone, methods: list[Method]):
        """The bank of `methods` (one per adapter, in adapter order) that encode_rows reads: built once per attach."""
        raise PTuningError(f"{cls.name!r}: {cls.not_servable}")

    @classmethod
    def encode_rows(cls, backbone, inputs: dict, bank, rows: torch.Tensor) -> torch.Tensor:
        """Hidden states (R, T, H) of rows whose adapter r runs as `methods[rows[r]]` of the bank; each row as it would
        run alone."""
        raise PTuningError(f"{cls.name!r}: {cls.not_servable}")


def too_long(config, P: int, T: int, room: int, how: str, fix: str = "") -> PTuningError:
    return PTuningError(
        f"pre_seq_len {P} + sequence length {T} = {P + T} exceeds the {room} positions of "
        f"{config.model_type} (real tokens sit at positions {how}): lower --max_seq_length or "
        f"--pre_seq_len{fix}."
    )


@register
class FineTuning(Method):
    name = "finetune"
    trains_backbone = True
    not_servable = "a fine-tuned model: it does not share a frozen backbone"

    def trains(self, name: str) -> bool:
        return True


BIAS_NAMES = ("bias", "q_bias", "v_bias")  # DeBERTa v1's fused attention keeps its query/value biases apart


@register
class BitFit(Method):
    """BitFit (Ben Zaken et al., 2022): every bias term of the backbone trains with the head (LayerNorm biases
    included, as the paper); the forward is the backbone's own. The checkpoint is those biases and the head."""

    name = "bitfit"
    trains_backbone = True
    not_servable = "a BitFit model (it trains the backbone's biases): it does not share a frozen backbone"

    def trains(self, name: str) -> bool:
        return super().trains(name) or name.rsplit(".", 1)[-1] in BIAS_NAMES


@dataclass
class PromptBank:
    """Every prompt adapter's prompt, left-padded to the longest: prompts (A, P_max, E), lengths (A,)."""

    prompts: torch.Tensor
    lengths: torch.Tensor


@register
class PromptTuning(Method):
    """P trainable vectors prepended to the word embeddings (Lester et al.)."""

    name = "prompt"
    flags = ("pre_seq_len", "prefix_init", "init_prefix_from")
    not_servable = None

    @classmethod
    def resolve(cls, args, config) -> dict:
        return {**super().resolve(args, config), "pre_seq_len": args.pre_seq_len}

    def __init__(self, host):
        super().__init__(host)
        # word-embedding width (ALBERT/ELECTRA embed narrower than hidden_size)
        width = host.backbone.get_input_embeddings().embedding_dim
        self.prompt = host.prompt_encoder = PromptEncoder(self.pre_seq_len, width)

    def init_from_tokens(self, backbone, token_ids: torch.Tensor) -> None:
        """The words' own word embeddings (Lester et al.)."""
        words = backbone.get_input_embeddings().weight[token_ids].detach()  # (P, E)
        self.prompt.embedding.weight.data.copy_(words)

    def encode(self, backbone, inputs: dict, position_ids=None, prefix_attention_mask=None) -> torch.Tensor:
        # The original ran the whole embedding layer on the tokens and then again on [prompt; embeddings] (its
        # issue #47). Here the prompt joins the WORD embeddings and the embedding layer (positions, types,
        # LayerNorm) runs once over [prompt; tokens], as Lester et al. and the maintainer's reply on #47 describe.
        input_ids, attention_mask, token_type_ids = backbone_inputs(inputs).values()
        batch, T = input_ids.shape
        P = self.pre_seq_len
        room = position_room(self.quirks, self.config)
        if room is not None and P + T > room:
            raise too_long(self.config, P, T, room, "after the prompt")
        words = backbone.get_input_embeddings()(input_ids)  # (B, T, E)
        prompt = self.prompt().to(words.dtype).unsqueeze(0).expand(batch, -1, -1)  # (B, P, E)
        ones = torch.ones(batch, P, dtype=torch.long, device=input_ids.device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is not None:
            token_type_ids = torch.cat([torch.zeros_like(ones), token_type_ids], dim=1)  # (B, P + T)
        outputs = backbone(
            inputs_embeds=torch.cat([prompt, words], dim=1),  # (B, P + T, E)
            attention_mask=torch.cat([ones, attention_mask.long()], dim=1),  # (B, P + T)
            token_type_ids=token_type_ids,
        )
        return outputs[0][:, P:]  # (B, T, H): the real tokens

    @classmethod
    def stack(cls, backbone, methods: list[PromptTuning]) -> PromptBank:
        lengths = [m.pre_seq_len for m in methods]
        with torch.no_grad():
            first = methods[0].prompt()  # (P, E)
            prompts = first.new_zeros(len(methods), max(lengths), first.shape[-1])  # (A, P_max, E)
            for a, m in enumerate(methods):
                prompts[a, max(lengths) - lengths[a] :] = m.prompt()
        return PromptBank(prompts, torch.tensor(lengths, device=prompts.device))

    @classmethod
    def encode_rows(cls, backbone, inputs: dict, bank: PromptBank, rows: torch.Tensor) -> torch.Tensor:
        """Each row's prompt left-padded to the rows' longest, the padding masked; positions given explicitly
        (prompt 0..P-1, tokens P..), so a row sees exactly its single-adapter input (left padding also keeps DeBERTa's
        relative distances)."""
        input_ids, attention_mask, token_type_ids = backbone_inputs(inputs).values()
        config = backbone.config
        quirks = get_backbone(config)
        P_rows = bank.lengths[rows]  # (R,)
        P_max = int(P_rows.max())
        words = backbone.get_input_embeddings()(input_ids)  # (R, T, E)
        stacked = bank.prompts.shape[1]
        prompts = bank.prompts.index_select(0, rows)[:, stacked - P_max :].to(words.dtype)  # (R, P_max, E)
        slot = torch.arange(P_max, device=input_ids.device)  # (P_max,)
        first = (P_max - P_rows)[:, None]  # (R, 1): the row's first prompt slot
        open_slots = (slot[None, :] >= first).long()  # (R, P_max)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        positions = row_position_ids(quirks, config, input_ids, P_rows)
        if positions is not None:  # prompt slot k of a row at position offset + k, padding at the offset
            offset = POSITION_STYLES[quirks.position_style].offset(config)
            prompt_positions = offset + (slot[None, :] - first).clamp(min=0)  # (R, P_max)
            positions = torch.cat([prompt_positions, positions], dim=1)  # (R, P_max + T)
        if token_type_ids is not None:
            types = [torch.zeros_like(open_slots), token_type_ids]
            token_type_ids = torch.cat(types, dim=1)  # (R, P_max + T)
        outputs = backbone(
            inputs_embeds=torch.cat([prompts, words], dim=1),  # (R, P_max + T, E)
            attention_mask=torch.cat([open_slots, attention_mask.long()], dim=1),  # (R, P_max + T)
            token_type_ids=token_type_ids,
            position_ids=positions,
        )
        return outputs[0][:, P_max:]  # (R, T, H): the real tokens


import model.prefix_tuning  # noqa: E402, F401  (registers "prefix"; it imports Method from here)
