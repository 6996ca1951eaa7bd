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

from training import run_records
from training.flags import identity_differences

logger = logging.getLogger(__name__)

LOCK_NAME = ".run.lock"
# What run.py and the HF Trainer write into --output_dir: removed by --overwrite_output_dir, nothing else is.
RUN_OUTPUTS = (
    "args.json", "*_results.json", "predict_results_*.jsonl", "trainer_state.json", "training_args.bin",
    "model.safetensors", "config.json", "tokenizer*.json", "special_tokens_map.json", "vocab.*", "merges.txt",
    "spm.model", "sentencepiece.bpe.model", "added_tokens.json", "checkpoint-*", "best_model", "runs",
)  # fmt: skip
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
    """The run's args.json payload ({"model_args": {...}, ...}); None when missing, unreadable or malformed
    (training/run_records.read_args, which says why)."""
    try:
        return run_records.read_args(output_dir)
    except (OSError, ValueError):
        return None


def write_record(path: str, text: str) -> str:
    """Write `text` to `path` whole or not at all (a full disk or a kill mid-write leaves the old file intact), and
    not at all when the file already holds it (an equal resume keeps its record untouched); returns the path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        with open(path) as f:
            if f.read() == text:
                return path
    except (OSError, UnicodeDecodeError):
        pass
    partial = path + ".partial"  # the folder is locked by this run (RunLock): no other writer
    try:
        with open(partial, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except OSError as err:  # a full disk, a read-only folder: name the file
        raise OSError(err.errno, err.strerror, err.filename or path) from err
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path


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
