"""The tuning methods, one registered row each: what it adds to the model, what trains, what the forward adds and
what a checkpoint saves. PTuningModel (model/ptuning.py) looks its method up here once and asks it; no other file
branches on the method's name.

  prefix   — P-tuning v2: a PrefixEncoder gives every (chosen) layer P extra keys and values; backbone frozen.
  prompt   — shallow prompt tuning: P vectors prepended to the word embeddings only; backbone frozen.
  finetune — no method flag: the whole backbone trains with the head.

A new method is a `Method` subclass decorated with `@register` (here, or in a module imported at the end of this
file); its flag is a boolean field of model/config.py's MethodArguments named in METHOD_FLAGS, and its own
hyper-parameters are fields of MethodArguments and MethodConfig (copied over in `MethodConfig.from_args`).
"""

from __future__ import annotations

import torch

from model.backbones import position_room, shifted_position_ids
from model.config import PTuningError
from model.injection import PrefixInjector
from model.prefix_encoder import PrefixEncoder, PromptEncoder

METHODS: dict[str, Method] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make `cls` the method named `cls.name`."""
    METHODS[cls.name] = cls()
    return cls


def in_backbone(name: str) -> bool:
    return name == "backbone" or name.startswith("backbone.")


class Method:
    """One tuning method. The default is a method on a frozen backbone that adds nothing to the forward."""

    name = ""

    def build(self, model) -> None:
        """Add the method's modules to `model` (a PTuningModel whose head is not built yet)."""

    def trains(self, name: str) -> bool:
        """Whether parameter `name` (as in model.named_parameters()) trains: everything outside the pretrained
        backbone. A method that adapts weights inside the backbone (LoRA-like) adds its own names here."""
        return not in_backbone(name)

    def saves(self, key: str) -> bool:
        """Whether state_dict key `key` is in a checkpoint (model/checkpoint.py): what trains."""
        return self.trains(key)

    def encode(self, model, input_ids, attention_mask, token_type_ids, position_ids, prefix_attention_mask):
        """The backbone's hidden states of the real tokens: (B, T, H)."""
        outputs = model.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
        )
        return outputs[0]


def too_long(model, T: int, room: int) -> PTuningError:
    P, prefix = model.pre_seq_len, model.method == "prefix"
    how = "shifted by the prefix" if prefix else "after the prompt"
    fix = " or pass --shift_positions False" if prefix else ""
    return PTuningError(
        f"pre_seq_len {P} + sequence length {T} = {P + T} exceeds the {room} positions of "
        f"{model.config.model_type} (real tokens sit at positions {how}): lower --max_seq_length or "
        f"--pre_seq_len{fix}."
    )


@register
class FineTuning(Method):
    name = "finetune"

    def trains(self, name: str) -> bool:
        return True


@register
class PrefixTuning(Method):
    """Per-layer key/value prefixes from a PrefixEncoder, routed into attention by the PrefixInjector."""

    name = "prefix"

    def build(self, model) -> None:
        config, quirks = model.config, model.quirks
        model.prefix_encoder = PrefixEncoder(model.method_config, config)
        if getattr(config, "inner_group_num", 1) != 1:
            raise PTuningError(
                f"{config.model_type} with inner_group_num={config.inner_group_num} runs several attention "
                "layers per depth; P-tuning v2 here supports inner_group_num=1 (every released ALBERT)."
            )
        model.injector = PrefixInjector(
            model.backbone, quirks.attention, model.method_config.attn_implementation, quirks.shared_layers
        )

    def encode(self, model, input_ids, attention_mask, token_type_ids, position_ids, prefix_attention_mask):
        batch, T = input_ids.shape
        extra = model.injector.set(model.layer_prefixes(batch, prefix_attention_mask))
        if position_ids is None and model.method_config.shift_positions:
            room = position_room(model.quirks, model.config)
            if room is not None and model.pre_seq_len + T > room:
                raise too_long(model, T, room)
            position_ids = shifted_position_ids(model.quirks, model.config, input_ids, model.pre_seq_len)
        outputs = model.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            **extra,
        )
        layers = len(model.method_config.prefix_layers)
        if model.injector.consumed != layers:
            # a backbone whose attention never takes the prefix would otherwise train a prefix that does nothing
            raise PTuningError(
                f"the {model.config.model_type} backbone's attention took {model.injector.consumed} of "
                f"{layers} layer prefixes in this forward: its attention does not route through "
                "the prefix injector (model/injection.py); add or fix its row in model/backbones.py."
            )
        return outputs[0]


@register
class PromptTuning(Method):
    """P trainable vectors prepended to the word embeddings (Lester et al.)."""

    name = "prompt"

    def build(self, model) -> None:
        # word-embedding width (ALBERT/ELECTRA embed narrower than hidden_size)
        width = model.backbone.get_input_embeddings().embedding_dim
        model.prompt_encoder = PromptEncoder(model.pre_seq_len, width)

    def encode(self, model, input_ids, attention_mask, token_type_ids, position_ids, prefix_attention_mask):
        # The original ran the whole embedding layer on the tokens and then again on [prompt; embeddings] (its
        # issue #47). Here the prompt joins the WORD embeddings and the embedding layer (positions, types,
        # LayerNorm) runs once over [prompt; tokens], as Lester et al. and the maintainer's reply on #47 describe.
        batch, T = input_ids.shape
        P = model.pre_seq_len
        shared = getattr(model.backbone, "_ptuning_injector", None)
        if (
            shared is not None
        ):  # a backbone shared with prefix adapters (model/multi_adapter.py): no prefix here
            shared.set(None)
        room = position_room(model.quirks, model.config)
        if room is not None and P + T > room:
            raise too_long(model, T, room)
        words = model.backbone.get_input_embeddings()(input_ids)  # (B, T, E)
        prompt = model.prompt_encoder().to(words.dtype).unsqueeze(0).expand(batch, -1, -1)  # (B, P, E)
        ones = torch.ones(batch, P, dtype=torch.long, device=input_ids.device)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is not None:
            token_type_ids = torch.cat([torch.zeros_like(ones), token_type_ids], dim=1)  # (B, P + T)
        outputs = model.backbone(
            inputs_embeds=torch.cat([prompt, words], dim=1),  # (B, P + T, E)
            attention_mask=torch.cat([ones, attention_mask.long()], dim=1),  # (B, P + T)
            token_type_ids=token_type_ids,
        )
        return outputs[0][:, P:]  # (B, T, H): the real tokens
