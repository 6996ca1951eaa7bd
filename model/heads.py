"""One wrapper per head around PTuningModel; heads and losses follow the original (and HF's loss functions).

Sequence classification: pooled first token -> dropout -> Linear(H, num_labels); the pooler is the backbone's own
  (BERT/RoBERTa: frozen in prefix mode, as the original) or DeBERTa's trainable ContextPooler.
Multiple choice: (B, C, T) flattened to (B·C, T), pooled the same way, Linear(H, 1) scores each choice.
Token classification: dropout -> Linear(H, num_labels) on every token.
Question answering: Linear(H, 2) on every token -> start/end logits (no dropout before it, as the original).
Each head's `scores(hidden)` is its part after the encoder, per row of hidden states: forward = encode + scores, and
the mixed-adapter model (model/multi_adapter.py) runs one shared encoder pass, then each adapter's `scores`.
"""

from __future__ import annotations

from torch import nn
from transformers.loss.loss_utils import (
    ForQuestionAnsweringLoss,
    ForSequenceClassificationLoss,
    ForTokenClassification,
    fixed_cross_entropy,
)
from transformers.modeling_outputs import (
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)

from model.config import MethodConfig
from model.ptuning import PTuningModel


class Pooler(nn.Module):
    """First-token pooling: the backbone's pretrained pooler, or DeBERTa's ContextPooler (new, trainable)."""

    def __init__(self, model: PTuningModel):
        super().__init__()
        config = model.config
        if model.quirks.pooler == "backbone":
            if getattr(model.backbone, "pooler", None) is None:
                raise ValueError(
                    f"{config.model_type} backbone was loaded without its pooler (add_pooling_layer)."
                )
            self.context = None
            self.output_dim = config.hidden_size
        else:
            from transformers.models.deberta_v2.modeling_deberta_v2 import ContextPooler

            for name, default in (
                ("pooler_hidden_size", config.hidden_size),
                ("pooler_dropout", 0.0),
                ("pooler_hidden_act", "gelu"),
            ):
                if getattr(config, name, None) is None:
                    setattr(config, name, default)
            self.context = ContextPooler(config)
            self.output_dim = self.context.output_dim
        self._backbone = [model.backbone]  # a list, so the backbone's pooler is not registered twice

    def forward(self, hidden_states):  # (B, T, H) -> (B, H')
        if self.context is not None:
            return self.context(hidden_states)
        backbone = self._backbone[0]
        if isinstance(backbone.pooler, nn.Linear):  # ALBERT: a bare Linear on the first token, then its Tanh
            return backbone.pooler_activation(backbone.pooler(hidden_states[:, 0]))
        return backbone.pooler(hidden_states)


class PTuningForSequenceClassification(PTuningModel):
    task_type = "SEQUENCE_CLASSIFICATION"

    def __init__(self, backbone, method_config: MethodConfig):
        super().__init__(backbone, method_config)
        self.pooler = Pooler(self)
        self.classifier = nn.Linear(self.pooler.output_dim, self.config.num_labels)
        self.post_init()

    def scores(self, hidden):  # (N, T, H) -> (N, num_labels)
        return self.classifier(self.dropout(self.pooler(hidden)))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        hidden = self.encode(input_ids, attention_mask, token_type_ids, **kwargs)  # (B, T, H)
        logits = self.scores(hidden)  # (B, num_labels)
        loss = None if labels is None else ForSequenceClassificationLoss(labels, logits, self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class PTuningForMultipleChoice(PTuningModel):
    task_type = "MULTIPLE_CHOICE"

    def __init__(self, backbone, method_config: MethodConfig):
        super().__init__(backbone, method_config)
        self.pooler = Pooler(self)
        self.classifier = nn.Linear(self.pooler.output_dim, 1)
        self.post_init()

    def scores(self, hidden):  # (N·C, T, H) -> (N·C, 1): one score per choice row
        return self.classifier(self.dropout(self.pooler(hidden)))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        batch, choices, T = input_ids.shape
        flat = [
            None if x is None else x.reshape(batch * choices, T) for x in (attention_mask, token_type_ids)
        ]
        hidden = self.encode(input_ids.reshape(batch * choices, T), *flat, **kwargs)  # (B·C, T, H)
        logits = self.scores(hidden).view(batch, choices)  # (B·C, 1) -> (B, C)
        loss = None if labels is None else fixed_cross_entropy(logits, labels.view(-1))
        return MultipleChoiceModelOutput(loss=loss, logits=logits)


class PTuningForTokenClassification(PTuningModel):
    task_type = "TOKEN_CLASSIFICATION"

    def __init__(self, backbone, method_config: MethodConfig):
        super().__init__(backbone, method_config)
        self.classifier = nn.Linear(self.config.hidden_size, self.config.num_labels)
        self.post_init()

    def scores(self, hidden):  # (N, T, H) -> (N, T, num_labels)
        return self.classifier(self.dropout(hidden))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        hidden = self.encode(input_ids, attention_mask, token_type_ids, **kwargs)  # (B, T, H)
        logits = self.scores(hidden)  # (B, T, num_labels)
        loss = None if labels is None else ForTokenClassification(logits, labels, self.config)  # -100 ignored
        return TokenClassifierOutput(loss=loss, logits=logits)


class PTuningForQuestionAnswering(PTuningModel):
    task_type = "QUESTION_ANSWERING"

    def __init__(self, backbone, method_config: MethodConfig):
        super().__init__(backbone, method_config)
        self.qa_outputs = nn.Linear(self.config.hidden_size, 2)
        self.post_init()

    def scores(self, hidden):  # (N, T, H) -> (N, T, 2): start and end logits
        return self.qa_outputs(hidden)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        token_type_ids=None,
        start_positions=None,
        end_positions=None,
        **kwargs,
    ):
        hidden = self.encode(input_ids, attention_mask, token_type_ids, **kwargs)  # (B, T, H)
        start_logits, end_logits = self.scores(hidden).split(1, dim=-1)  # (B, T, 1) each
        start_logits, end_logits = start_logits.squeeze(-1).contiguous(), end_logits.squeeze(-1).contiguous()
        loss = ForQuestionAnsweringLoss(start_logits, end_logits, start_positions, end_positions)
        return QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)
