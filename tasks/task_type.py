"""The head a task needs, as a leaf value: tasks/ name it, model/ maps it to a head class (model.utils re-exports
it as `TaskType`, the original's `from model.utils import get_model, TaskType`). Imports nothing from the project."""

from __future__ import annotations

from enum import Enum


class TaskType(Enum):
    TOKEN_CLASSIFICATION = 1  # one label per token (NER, SRL)
    SEQUENCE_CLASSIFICATION = 2  # one label (or one regression score) per input (GLUE, SuperGLUE)
    QUESTION_ANSWERING = 3  # start/end logits per token (SQuAD)
    MULTIPLE_CHOICE = 4  # one score per choice, softmax over the choices (COPA)
