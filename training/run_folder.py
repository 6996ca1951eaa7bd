"""A run folder belongs to one run: a lock for the life of the run, resume only with the same arguments, an intact
checkpoint to resume from, --overwrite_output_dir that really starts afresh, and eval-only runs that leave a training
run's records alone. search.py and every sweep trust what a folder says about itself; this module keeps it true.

Everything here only reads the folder, except `RunLock` (its lock file) and `clear_previous_run` (after every check
that can refuse the run has passed).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shutil
import socket
import time
import zipfile

logger = logging.getLogger(__name__)

LOCK_NAME = ".run.lock"
# What run.py and the HF Trainer write into --output_dir: removed by --overwrite_output_dir, nothing else is.
RUN_OUTPUTS = (
    "args.json", "*_results.json", "predict_results_*.jsonl", "trainer_state.json", "training_args.bin",
    "model.safetensors", "config.json", "tokenizer*.json", "special_tokens_map.json", "vocab.*", "merges.txt",
    "spm.model", "sentencepiece.bpe.model", "added_tokens.json", "checkpoint-*", "best_model", "runs",
)  # fmt: skip
# Every recorded argument changes what a run computes except these (a run and its resumption, or a finished folder
# and the sweep cell that would recreate it, may differ in them). One rule for both: `identity`. Reviewed field by
# field; tests/test_identity.py pins this set and checks that changing any other field is reported.
NOT_IDENTITY = frozenset({
    # where the run writes and how it was started
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint",
    # logging, reporting, progress bars ("logging_dir": recorded by older transformers)
    "logging_dir", "logging_steps", "logging_strategy", "logging_first_step", "log_level", "log_level_replica",
    "log_on_each_node", "report_to", "disable_tqdm", "run_name", "project", "trackio_space_id",
    "trackio_bucket_id", "trackio_static_space_id", "include_num_input_tokens_seen", "skip_memory_metrics",
    # saving and the Hub
    "save_strategy", "save_steps", "save_total_limit", "save_on_each_node", "enable_jit_checkpoint", "push_to_hub",
    "hub_model_id", "hub_token", "hub_private_repo", "hub_strategy", "hub_always_push", "hub_revision",
    # evaluation/prediction beside training: the best dev epoch and its test scores do not depend on them
    "do_eval", "do_predict", "per_device_eval_batch_size", "eval_accumulation_steps", "eval_on_start",
    "eval_test_every_epoch", "group_eval_by_length", "max_predict_samples", "test_file",
    # speed only: caches, worker processes, device placement of data, distributed plumbing
    "cache_dir", "overwrite_cache", "preprocessing_num_workers", "dataloader_num_workers", "dataloader_pin_memory",
    "dataloader_persistent_workers", "dataloader_prefetch_factor", "dataloader_multiprocessing_context",
    "torch_empty_cache_steps", "local_rank", "ddp_backend", "ddp_timeout", "ddp_find_unused_parameters",
    "ddp_bucket_cap_mb",
    # accepted for old command lines and ignored (arguments.py)
    "use_auth_token", "dataset_config_name",
    # not a flag: derived from --prefix/--prompt, which are compared
    "method",
})  # fmt: skip
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class RunFolderError(RuntimeError):
    """The output folder cannot take this run; the message names why and the fixes."""


class RunLock:
    """An exclusive lock on <output_dir>/.run.lock for the life of a run (fcntl.flock: released by the OS if the
    process dies, so a killed run never blocks its own resumption). A second run into the folder is refused at once,
    naming the holder."""

    def __init__(self, output_dir: str, enabled: bool = True):
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.enabled, self._file = enabled, None  # only the main process of a distributed run locks

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> RunLock:
        import fcntl

        if not self.enabled:
            return self
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunFolderError(
                f"{os.path.dirname(self.path)!r} is in use by another run ({holder}); wait for it to finish or "
                "choose another --output_dir."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            os.remove(self.path)  # while still holding it: a waiting run then finds a fresh file
            self._file.close()
            self._file = None


def _entries(output_dir: str) -> list[str]:
    return sorted(e for e in os.listdir(output_dir) if e != LOCK_NAME) if os.path.isdir(output_dir) else []


def _is_run_output(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in RUN_OUTPUTS)


def read_args(output_dir: str) -> dict | None:
    """The run's args.json payload ({"model_args": {...}, ...}); None when missing, unreadable or not an object."""
    try:
        with open(os.path.join(output_dir, "args.json")) as f:
            payload = json.load(f)
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


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
    rule, for resuming (identity_differences) and for sweeps (args_differences). A flag that one version of this
    project has and the other lacks (its default is the old behaviour) is no difference, so a run started before an
    upgrade can still be resumed."""
    old, new = identity(recorded, also), identity(json.loads(json.dumps(current, default=str)), also)
    return [(key, old[key], new[key]) for key in sorted(set(old) & set(new)) if old[key] != new[key]]


def identity_differences(recorded: dict, current: dict) -> list[str]:
    """['--learning_rate: 0.01 (recorded) vs 0.5 (now)', ...]: `differing`, one line per flag."""
    return [f"--{key}: {old!r} (recorded) vs {new!r} (now)" for key, old, new in differing(recorded, current)]


def checkpoint_problem(path: str) -> str | None:
    """Why a checkpoint-N folder cannot be resumed from (None when it looks intact): a kill during saving leaves it
    without trainer_state.json; a truncated copy leaves a safetensors file whose header or data is cut, or a torch.save
    archive (optimizer, scheduler, scaler, rng_state) without its end; bit-rot breaks an archive member's CRC or the
    model's ptuning_meta record."""
    state = os.path.join(path, "trainer_state.json")
    try:
        with open(state) as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        return f"trainer_state.json unreadable ({type(err).__name__})"
    if not isinstance(record, dict) or not isinstance(record.get("global_step"), int):
        return "trainer_state.json holds no global_step"
    weights = os.path.join(path, "model.safetensors")
    if not os.path.exists(weights):
        return "no model.safetensors"
    problem = safetensors_problem(weights) or meta_problem(weights)
    if problem:
        return f"model.safetensors {problem}"
    # what the Trainer torch.loads on resume (optimizer.pt, scheduler.pt, scaler.pt, rng_state[_N].pth): zip
    # archives, so every member's CRC can be checked without unpickling anything
    for name in sorted(os.listdir(path)):
        if name.endswith((".pt", ".pth")):
            try:
                with zipfile.ZipFile(os.path.join(path, name)) as archive:
                    if archive.testzip() is not None:
                        return f"{name} is damaged"
            except (zipfile.BadZipFile, OSError, EOFError):
                return f"{name} is damaged"
    return None


def meta_problem(path: str) -> str | None:
    """None when the safetensors file at `path` holds a readable ptuning_meta record (model/checkpoint.py: every
    checkpoint of this project has one, and resuming decodes it first); else what is wrong."""
    from safetensors import safe_open

    from model.checkpoint import META_KEY, decode

    try:
        with safe_open(path, framework="pt") as f:
            if META_KEY not in f.keys():
                return f"has no {META_KEY} record"
            if isinstance(decode(f.get_tensor(META_KEY)), dict):
                return None
    except Exception:  # safetensors' SafetensorError derives from Exception only; decode: Unicode/JSON errors
        pass
    return f"holds a damaged {META_KEY} record"


def safetensors_problem(path: str) -> str | None:
    """None when the file's header parses and its data is all there; else what is wrong."""
    try:
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            size = os.path.getsize(path)
            if header_len <= 0 or 8 + header_len > size:
                return "is truncated or not a safetensors file"
            header = json.loads(f.read(header_len))
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        if 8 + header_len + max(ends, default=0) > size:
            return "is truncated"
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "is not a readable safetensors file"
    return None


def newest_intact_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint-N that can be resumed from; damaged newer ones are skipped with a warning."""
    steps = sorted(
        (int(m.group(1)), e) for e in _entries(output_dir) if (m := _CHECKPOINT.match(e)) and os.path.isdir(
            os.path.join(output_dir, e))
    )  # fmt: skip
    for i, (_, name) in enumerate(reversed(steps)):
        path = os.path.join(output_dir, name)
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        older = "; trying an older one" if i + 1 < len(steps) else "; no older checkpoint is left"
        logger.warning("Skipping the damaged checkpoint %s: %s%s.", path, problem, older)
    return None


# What marks a model folder (e.g. a copy of a HF backbone): the run's own save would replace these files.
MODEL_FILES = ("config.json", "*.safetensors", "pytorch_model*.bin", "tf_model.h5", "flax_model.msgpack")


def claim_for_training(
    output_dir: str, overwrite: bool, current_args: dict, resume_from_checkpoint: str | bool | None = None
) -> str | None:
    """Check that this training run may use `output_dir`; returns the checkpoint to resume from (or None).

    Refuses (RunFolderError) a folder with other files and no checkpoint, a resume whose recorded arguments differ
    from this run's, and --overwrite_output_dir over a model folder (model files, no args.json of a run). A folder
    holding only a never-started run's args.json counts as empty. `resume_from_checkpoint` (--resume_from_checkpoint):
    a checkpoint-N folder, checked against its own run's args.json with the same rule and returned; True (or "true",
    as HF: the newest checkpoint of `output_dir`)."""
    entries = _entries(output_dir)
    fixes = "choose another --output_dir, or pass --overwrite_output_dir to discard the previous run"
    if overwrite:
        _refuse_to_overwrite_a_model(output_dir, entries)
    explicit = _explicit_checkpoint(resume_from_checkpoint)
    if isinstance(explicit, str):
        _check_explicit_checkpoint(explicit, output_dir, overwrite, current_args)
    elif explicit and (overwrite or not any(_CHECKPOINT.match(e) for e in entries)):
        why = (
            "--overwrite_output_dir would delete: leave out one of the two flags"
            if overwrite
            else "holds none: leave the flag out to start afresh"
        )
        raise RunFolderError(
            f"--resume_from_checkpoint {resume_from_checkpoint} resumes the newest checkpoint of {output_dir!r}, "
            f"which {why}, or name a checkpoint-N folder."
        )
    if overwrite or not entries or entries == ["args.json"]:
        return explicit if isinstance(explicit, str) else None
    last = newest_intact_checkpoint(output_dir)
    if last is None:
        raise RunFolderError(
            f"output directory {output_dir!r} exists and is not empty, and holds no intact checkpoint to resume "
            f"({', '.join(entries[:6])}"
            f"{' …' if len(entries) > 6 else ''}): {fixes}."
        )
    recorded = read_args(output_dir)
    if recorded is None:
        raise RunFolderError(
            f"{output_dir!r} holds checkpoints but no readable args.json to check them against: {fixes}."
        )
    differences = identity_differences(recorded, current_args)
    if differences:
        raise RunFolderError(
            f"{output_dir!r} holds a run with other arguments, so resuming it would mix two runs: "
            f"{'; '.join(differences)}. {fixes[0].upper()}{fixes[1:]}."
        )
    if isinstance(explicit, str):
        return explicit
    logger.warning("Resuming training from %s (pass --overwrite_output_dir to start afresh).", last)
    return last


def _explicit_checkpoint(value: str | bool | None) -> str | bool | None:
    """--resume_from_checkpoint as HF's Trainer.train takes it: a path, True (the newest checkpoint of output_dir) or
    nothing; the command line gives strings, so "true"/"false" are the booleans."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value or None


def _check_explicit_checkpoint(path: str, output_dir: str, overwrite: bool, current_args: dict) -> None:
    """A checkpoint named by --resume_from_checkpoint must be intact and belong to a run with this run's arguments
    (its parent folder's args.json, compared by the identity rule), and must outlive --overwrite_output_dir."""
    flag = f"--resume_from_checkpoint {path!r}"
    if not os.path.isdir(path):
        raise RunFolderError(f"{flag} is not a folder: name a checkpoint-N folder of a run.")
    run_dir = os.path.dirname(os.path.abspath(path))
    if overwrite and os.path.realpath(run_dir) == os.path.realpath(output_dir):
        raise RunFolderError(
            f"{flag} is inside {output_dir!r}, which --overwrite_output_dir would clear before resuming from it: "
            "leave out --overwrite_output_dir to resume, or --resume_from_checkpoint to start afresh."
        )
    problem = checkpoint_problem(path)
    if problem:
        raise RunFolderError(f"{flag} cannot be resumed from: {problem}; name an intact checkpoint-N folder.")
    recorded = read_args(run_dir)
    if recorded is None:
        raise RunFolderError(
            f"{flag}: its run folder {run_dir!r} has no readable args.json to check this run's arguments against; "
            "resume only checkpoints of runs written by run.py."
        )
    differences = identity_differences(recorded, current_args)
    if differences:
        raise RunFolderError(
            f"{flag} belongs to a run with other arguments ({os.path.join(run_dir, 'args.json')}), so resuming it "
            f"would mix two runs: {'; '.join(differences)}. Rerun with that run's arguments, or leave out "
            "--resume_from_checkpoint."
        )


def _refuse_to_overwrite_a_model(output_dir: str, entries: list[str]) -> None:
    """--overwrite_output_dir clears only a run's folder; a model folder (e.g. a copy of a HF backbone) would lose
    its model.safetensors/config.json to this run's save."""
    if not entries or read_args(output_dir) is not None:
        return
    found = [e for e in entries if any(fnmatch.fnmatch(e, pattern) for pattern in MODEL_FILES)]
    if found:
        raise RunFolderError(
            f"{output_dir!r} holds a model ({', '.join(found[:4])}{' …' if len(found) > 4 else ''}) and no "
            "readable args.json of a run, so --overwrite_output_dir would replace the model's files with this "
            "run's: choose another --output_dir."
        )


def refuse_training_folder_for_eval(output_dir: str) -> None:
    """An eval/predict-only run must not overwrite a training run's records (args.json, results)."""
    recorded = read_args(output_dir)
    trained = recorded is not None and recorded.get("training_args", {}).get("do_train")
    if trained or os.path.exists(os.path.join(output_dir, "best_results.json")):
        raise RunFolderError(
            f"{output_dir!r} holds a training run; an evaluation/prediction-only run would overwrite its args.json "
            f"and results. Pass another --output_dir (e.g. {os.path.join(output_dir, 'eval')!r})."
        )


def clear_previous_run(output_dir: str) -> list[str]:
    """--overwrite_output_dir: remove what an earlier run wrote (results, checkpoints, best model); files this
    project did not write are kept, and a folder without a run's args.json is left alone (it may be a model folder).
    Returns the removed names."""
    if read_args(output_dir) is None:  # not a folder this project wrote a run into: touch nothing
        return []
    removed = [e for e in _entries(output_dir) if _is_run_output(e)]
    for name in removed:
        path = os.path.join(output_dir, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    if removed:
        logger.warning("--overwrite_output_dir: removed the previous run's %s", ", ".join(removed))
    return removed


# ---- search.sh: is a finished folder the run this sweep would start? (search.py --same-args) --------------------
# Beyond the identity rule, a finished folder is this sweep's run only if it holds the same results: whether test
# sets were scored, and on what (a resumed run would score them; a skipped folder would not).
SWEEP_ALSO = ("do_predict", "max_predict_samples", "test_file")


def run_payload(flags: list[str]) -> dict:
    """The args.json payload run.py records for the run.py command line `flags` (--output_dir may be left out),
    parsed by run.py's own parser. RunFolderError (one line) when run.py would refuse the flags."""
    import contextlib
    import io

    from arguments import args_payload, get_args

    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            model_args, data_args, training_args, *family_args = get_args(list(flags))
    except SystemExit:  # arguments.get_args: one usage line, then exit 2
        reason = (usage.getvalue().strip().splitlines() or ["unknown"])[-1].partition("error: ")[2]
        raise RunFolderError(f"run.py refuses these flags: {reason or usage.getvalue().strip()}") from None
    payload = args_payload(model_args, data_args, training_args, *family_args)
    return json.loads(json.dumps(payload, default=str))


def _given(flags: list[str]) -> dict[str, str]:
    """{flag: its text on the command line}, for the messages only (values are compared as run.py parses them)."""
    from arguments import RENAMED_FLAGS

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


def args_differences(run_dir: str, flags: list[str]) -> list[str] | None:
    """How the arguments recorded in run_dir/args.json differ from the run that the run.py command line `flags`
    would start, one line each ([] = the same run): the identity rule of resuming (`differing`), plus SWEEP_ALSO.
    None when args.json is missing or unreadable."""
    recorded = read_args(run_dir)
    if recorded is None:
        return None
    try:
        current = run_payload(flags)
    except RunFolderError as err:
        return [str(err)]
    given = _given(flags)
    diffs = []
    for key, old, new in differing(recorded, current, SWEEP_ALSO):
        text = given.get(key, "False" if f"no_{key}" in given else None)
        if text is None:
            diffs.append(f"--{key}: recorded {old!r}, this sweep leaves the default {new!r}")
        else:
            diffs.append(f"--{key}: recorded {old!r}, this sweep {text!r}")
    return diffs
