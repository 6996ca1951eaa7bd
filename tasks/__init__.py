"""Tasks: one file per family registers its datasets (see tasks/registry.py)."""

from tasks.registry import FAMILIES, DataError, Task, dataset_names, get_task, register_task

__all__ = ["FAMILIES", "DataError", "Task", "dataset_names", "get_task", "register_task"]
