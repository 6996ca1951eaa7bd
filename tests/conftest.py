import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def caches_in_a_tmp_dir(tmp_path_factory):
    """Every cache the suite writes (tokenisation caches of training/data.py, datasets' own Arrow caches, anything
    under HF_HOME) goes to a session tmp dir instead of the user's ~/.cache/huggingface.

    The environment reaches subprocesses the tests spawn (they inherit os.environ). datasets reads its cache paths
    once at import, which collection has already done, so its module constants are pointed there too."""
    import datasets.config

    home = tmp_path_factory.mktemp("hf_home")
    env = {"HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets")}
    constants = {
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": home / "datasets",
        "HF_MODULES_CACHE": home / "modules",
        "DOWNLOADED_DATASETS_PATH": home / "datasets" / "downloads",
        "EXTRACTED_DATASETS_PATH": home / "datasets" / "downloads" / "extracted",
    }
    saved_env = {k: os.environ.get(k) for k in env}
    saved_constants = {k: getattr(datasets.config, k) for k in constants}
    os.environ.update(env)
    for k, v in constants.items():
        setattr(datasets.config, k, type(saved_constants[k])(v))
    yield home
    for k, v in saved_env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    for k, v in saved_constants.items():
        setattr(datasets.config, k, v)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A tiny random BERT (2 layers x 32) + tokenizer saved as a local model directory, shared by the run.py tests."""
    from tiny import save_tiny_model

    return save_tiny_model(str(tmp_path_factory.mktemp("tiny-bert")), "bert")
