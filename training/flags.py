"""The argument schema: what a run.py flag is beyond its type and default, declared once, and the identity rule that
follows from it.

Every flag of run.py (arguments.py's dataclasses, HF TrainingArguments, each family's) changes what a run computes
unless FLAGS says otherwise. From this one table come:
- the identity rule (`differing`): which recorded arguments a resumed run must share with its folder (run.py,
  training/run_folder.py) and a finished folder with the sweep cell that would recreate it (search.py --same-args);
- search.py's hyper-parameter columns and their short headers;
- the old spellings run.py translates.
Standard library only: search.py imports it without torch or transformers. tests/test_identity.py pins the
exempt set and checks that changing any other field is reported.
"""

from __future__ import annotations

import dataclasses
import json
import logging


@dataclasses.dataclass(frozen=True)
class Flag:
    result_changing: bool = True  # compared when resuming a folder and when a sweep checks a finished folder
    column: str | None = None  # search.py shows it, under this header (the CSV keeps the flag's name)
    sweep_also: bool = (
        False  # not result-changing, but a finished sweep folder must match it (what it scored)
    )


SAME = Flag(result_changing=False)
SCORED = Flag(result_changing=False, sweep_also=True)

logger = logging.getLogger(__name__)

# Only flags that are not plain result-changing ones are listed; reviewed field by field.
FLAGS: dict[str, Flag] = {
    # search.py's columns, in display order (all result-changing)
    "learning_rate": Flag(column="lr"),
    "pre_seq_len": Flag(column="psl"),
    "num_train_epochs": Flag(column="epochs"),
    "seed": Flag(column="seed"),
    "per_device_train_batch_size": Flag(column="bs"),
    "hidden_dropout_prob": Flag(column="dropout"),
    "prefix_projection": Flag(column="proj"),
    # where the run writes and how it was started
    "output_dir": SAME, "overwrite_output_dir": SAME, "resume_from_checkpoint": SAME,
    # logging, reporting, progress bars ("logging_dir": recorded by older transformers)
    "logging_dir": SAME, "logging_steps": SAME, "logging_strategy": SAME, "logging_first_step": SAME,
    "log_level": SAME, "log_level_replica": SAME, "log_on_each_node": SAME, "report_to": SAME, "disable_tqdm": SAME,
    "run_name": SAME, "project": SAME, "trackio_space_id": SAME, "trackio_bucket_id": SAME,
    "trackio_static_space_id": SAME, "include_num_input_tokens_seen": SAME, "skip_memory_metrics": SAME,
    # saving and the Hub
    "save_strategy": SAME, "save_steps": SAME, "save_total_limit": SAME, "save_on_each_node": SAME,
    "enable_jit_checkpoint": SAME, "push_to_hub": SAME, "hub_model_id": SAME, "hub_token": SAME,
    "hub_private_repo": SAME, "hub_strategy": SAME, "hub_always_push": SAME, "hub_revision": SAME,
    # evaluation/prediction beside training: the best dev epoch does not depend on them; a sweep folder skipped as
    # done must hold the test scores the sweep asks for (a resumed run would compute them)
    "do_eval": SAME, "per_device_eval_batch_size": SAME, "eval_accumulation_steps": SAME, "eval_on_start": SAME,
    "eval_test_every_epoch": SAME, "group_eval_by_length": SAME,
    "do_predict": SCORED, "max_predict_samples": SCORED, "test_file": SCORED,
    # speed only: caches, worker processes, device placement of data, distributed plumbing
    "cache_dir": SAME, "overwrite_cache": SAME, "preprocessing_num_workers": SAME, "dataloader_num_workers": SAME,
    "dataloader_pin_memory": SAME, "dataloader_persistent_workers": SAME, "dataloader_prefetch_factor": SAME,
    "dataloader_multiprocessing_context": SAME, "torch_empty_cache_steps": SAME, "local_rank": SAME,
    "ddp_backend": SAME, "ddp_timeout": SAME, "ddp_find_unused_parameters": SAME, "ddp_bucket_cap_mb": SAME,
    # accepted for old command lines and ignored (arguments.py)
    "use_auth_token": SAME, "dataset_config_name": SAME,
    # not a flag: derived from --prefix/--prompt, which are compared
    "method": SAME,
}  # fmt: skip

NOT_IDENTITY = frozenset(name for name, flag in FLAGS.items() if not flag.result_changing)
SWEEP_ALSO = tuple(name for name, flag in FLAGS.items() if flag.sweep_also)
COLUMNS = {name: flag.column for name, flag in FLAGS.items() if flag.column}  # flag -> header, display order
# Spellings of old transformers releases that the original's scripts use -> today's name.
RENAMED_FLAGS = {"--evaluation_strategy": "--eval_strategy", "--no_cuda": "--use_cpu"}


def identity(payload: dict, also: tuple[str, ...] = ()) -> dict:
    """The result-changing arguments of an args.json payload, flattened to {flag: value}: every recorded argument
    except NOT_IDENTITY (`also`: names of NOT_IDENTITY to keep)."""
    flat = {}
    for group in payload.values():
        if isinstance(group, dict):
            for key, value in group.items():
                if key not in NOT_IDENTITY or key in also:
                    flat[key] = value
    return flat


def differing(recorded: dict, current: dict, also: tuple[str, ...] = ()) -> list[tuple[str, object, object]]:
    """[(flag, recorded value, current value)] over the result-changing arguments both payloads record: THE identity
    rule, for resuming (identity_differences) and for sweeps (sweep_differences). A flag that one version of this
    project has and the other lacks (its default is the old behaviour) is no difference, so a run started before an
    upgrade can still be resumed."""
    old, new = identity(recorded, also), identity(json.loads(json.dumps(current, default=str)), also)
    return [(key, old[key], new[key]) for key in sorted(set(old) & set(new)) if old[key] != new[key]]


def identity_differences(recorded: dict, current: dict) -> list[str]:
    """['--learning_rate: 0.01 (recorded) vs 0.5 (now)', ...]: `differing`, one line per flag."""
    return [f"--{key}: {old!r} (recorded) vs {new!r} (now)" for key, old, new in differing(recorded, current)]


def sweep_differences(recorded: dict, current: dict, flags: list[str]) -> list[str]:
    """How a finished folder's args.json (`recorded`) differs from the run a sweep's run.py command line `flags`
    would start (`current`: its payload, parsed by run.py's own parser), one line each ([] = the same run): the
    identity rule plus SWEEP_ALSO, each flag quoted as the sweep gave it (or as left at its default)."""
    given = _given(flags)
    diffs = []
    for key, old, new in differing(recorded, current, SWEEP_ALSO):
        text = given.get(key, "False" if f"no_{key}" in given else None)
        if text is None:
            diffs.append(f"--{key}: recorded {old!r}, this sweep leaves the default {new!r}")
        else:
            diffs.append(f"--{key}: recorded {old!r}, this sweep {text!r}")
    return diffs


def _given(flags: list[str]) -> dict[str, str]:
    """{flag: its text on the command line}, for the messages only (values are compared as run.py parses them)."""
    values: dict[str, list[str]] = {}
    name = None
    for token in flags:
        if token.startswith("--"):
            flag, eq, value = token.partition("=")
            name = RENAMED_FLAGS.get(flag, flag)[2:]
            values[name] = [value] if eq else []
            name = None if eq else name
        elif name is not None:
            values[name].append(token)
    return {name: " ".join(v) or "True" for name, v in values.items()}


def given(argv: list[str], name: str) -> bool:
    """Whether --name was passed on the command line (as `--name v` or `--name=v`), not left at its default."""
    return any(arg == f"--{name}" or arg.startswith(f"--{name}=") for arg in argv)


def translate_old_flags(argv: list[str]) -> list[str]:
    """argv with the old spellings (RENAMED_FLAGS) replaced by today's, each with a warning."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name in RENAMED_FLAGS:
            logger.warning("%s was renamed %s in transformers; translating.", name, RENAMED_FLAGS[name])
            arg = RENAMED_FLAGS[name] + eq + value
        out.append(arg)
    return out
