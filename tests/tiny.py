"""Tiny local tokenizers, configs and models for tests: nothing is downloaded.

They live in benchmarks/common/tiny.py, shared with the benchmarks' smoke paths and the GPU check; this module keeps
the tests' short import (`from tiny import ...`).
"""

from benchmarks.common.tiny import (  # noqa: F401
    TINY_KINDS,
    TINY_SIZES,
    bert_tokenizer,
    roberta_tokenizer,
    save_tiny_model,
    tiny_config,
)
