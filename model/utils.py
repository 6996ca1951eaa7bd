"""Entry point kept from the original: `from model.utils import get_model, TaskType`."""

from enum import Enum


class TaskType(Enum):
    TOKEN_CLASSIFICATION = 1
    SEQUENCE_CLASSIFICATION = 2
    QUESTION_ANSWERING = 3
    MULTIPLE_CHOICE = 4
