"""What the run folders of a sweep say about themselves, read defensively for search.py: which folders hold a run
of a dataset and backbone (each real folder once, links to folders never followed), their best_results.json and
args.json (regular files only: a FIFO would block), which metric values can be ranked (finite numbers), each run's
configuration (its result-changing arguments but the seed) and the ranking order (configurations by their mean over
seeds; complete runs with args.json first; losses minimised). Problems are warnings on stderr naming the file and
the fix; nothing here writes."""

from __future__ import annotations

import collections
import glob
import json
import math
import os
import re
import stat
import statistics
import sys

from model.config import MethodArguments  # the method flags (standard library only)
from training.flags import COLUMNS, identity


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def read_json(path: str) -> dict:
    """The JSON object in `path`; raises OSError or ValueError when it is missing, unreadable or not an object.
    Only a regular file (or a link to one) is opened: reading a FIFO named best_results.json would block forever."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "not a plain file"
        raise ValueError(f"{kind}, not a regular file: not opened; replace it with the file run.py wrote")
    try:
        with open(path) as f:
            data = json.load(f)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


# The hyper-parameters search.py shows for every run (the schema's search columns, training/flags.py), and the
# configuration entries with a column of their own (configuration()).
HPARAMS = tuple(COLUMNS)
NAMED = ("method", "backbone")

# The sections of args.json search.py reads (save_args writes each as a JSON object).
ARGS_SECTIONS = ("model_args", "data_args", "training_args")


def read_args(run_dir: str) -> dict:
    """RUN_DIR/args.json; raises OSError or ValueError as read_json, and ValueError when a section search.py reads
    is not a JSON object (e.g. {"training_args": 5})."""
    run_args = read_json(os.path.join(run_dir, "args.json"))
    bad = [
        f"{s} is {type(run_args[s]).__name__}"
        for s in ARGS_SECTIONS
        if not isinstance(run_args.get(s, {}), dict)
    ]
    if bad:
        raise ValueError(
            f"{', '.join(bad)}, not a JSON object as run.py writes; restore the file or rerun the run"
        )
    return run_args


def backbone(run_args: dict | None) -> str | None:
    """The backbone a run used: the last part of its recorded --model_name_or_path ('roberta-large' for
    'roberta-large', 'FacebookAI/roberta-large' or '/models/roberta-large/'); None when not recorded."""
    model_args = (run_args or {}).get("model_args")
    path = model_args.get("model_name_or_path") if isinstance(model_args, dict) else None
    if not isinstance(path, str) or not path.strip("/"):
        return None
    return os.path.basename(path.rstrip("/"))


def method(run_args: dict | None) -> str | None:
    """The method's name ('prefix', 'prompt', 'bitfit', 'finetune'): recorded since the method table; older runs:
    the method flag they set (model/config.py METHOD_FLAGS), none meaning fine-tuning."""
    model_args = (run_args or {}).get("model_args") or {}
    if not isinstance(model_args, dict) or not model_args:
        return None
    if model_args.get("method"):
        return model_args["method"]
    return next((flag for flag in MethodArguments.METHOD_FLAGS if model_args.get(flag)), "finetune")


# Recorded arguments that do not tell configurations apart: the seed (averaged over), and what `backbone` and
# `method` stand for (FacebookAI/roberta-large and /models/roberta-large are the backbone roberta-large).
NOT_CONFIGURATION = frozenset({"seed", "model_name_or_path", *MethodArguments.METHOD_FLAGS})


def configuration(run_args: dict) -> dict:
    """A run's configuration, {flag: value}: every result-changing argument args.json records (training/flags.py
    `identity`) but the seed, with the backbone and the method for --model_name_or_path, --prefix and --prompt."""
    conf = {k: v for k, v in identity(run_args).items() if k not in NOT_CONFIGURATION}
    return {**conf, "method": method(run_args), "backbone": backbone(run_args)}


def same_value_key(value) -> str:
    """Text that is equal for equal recorded values: a hand-edited args.json may hold a list (unhashable) or NaN
    (never equal to itself)."""
    return json.dumps(value, sort_keys=True, default=repr)


def hyperparameters(run_args: dict | None) -> dict:
    """The HPARAMS, the method and the backbone from an args.json dict (read_args); None where not recorded."""
    run_args = run_args or {}
    sections = [run_args.get(section) for section in ARGS_SECTIONS if isinstance(run_args.get(section), dict)]
    out = {name: next((sec[name] for sec in sections if name in sec), None) for name in HPARAMS}
    return {**out, "method": method(run_args), "backbone": backbone(run_args)}


def swept_flags(rows: list[dict]) -> list[str]:
    """The configuration entries (a row's "flags") whose value differs among the runs with args.json, not recorded
    counting as a value: the HPARAMS in their order, then the other flags by name, then method and backbone."""
    confs = [r["flags"] for r in rows if r["args_json"]]
    names = {name for conf in confs for name in conf}
    varies = {n for n in names if len({same_value_key(c[n]) if n in c else None for c in confs}) > 1}
    return [
        *(n for n in HPARAMS if n in varies),
        *sorted(varies - set(HPARAMS) - set(NAMED)),
        *(n for n in NAMED if n in varies),
    ]


def flag_value(row: dict, name: str):
    """A configuration entry of a run: None when not recorded (shown '?'), the text 'None' for a recorded null."""
    value = row["flags"].get(name)
    return "None" if value is None and name in row["flags"] else value


def score(row: dict, key: str) -> float | None:
    """The number `key` of the run's best_results.json, None when it has none (or not a finite one)."""
    value = row["results"].get(key)
    return float(value) if is_metric_number(value) else None


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[-_.\s]+", name.lower()) if w]


def tag_matches(tag: str, name: str) -> bool:
    """Whether MODEL `tag` names the backbone `name`: its words (split at - _ . and spaces, any case) appear in a
    row in the name's. 'roberta' matches 'roberta-large', 'minilm' 'MiniLM-L12-H384-uncased'; 'bert' does not
    match 'roberta-large' (nor 'distilbert-base')."""
    want, words = _words(tag), _words(name)
    return bool(want) and any(words[i : i + len(want)] == want for i in range(len(words) - len(want) + 1))


def find_run_dirs(root: str, dataset: str, model: str) -> tuple[str, list[str], dict[str, int]]:
    """(the folder scanned, the run folders in sorted path order, each real folder once, and the backbones of the
    DATASET runs left out because they are another model's: {backbone: number of runs})."""
    search_dir = os.path.join(root, f"{dataset}-{model}-search")
    if os.path.isdir(search_dir):  # the original's layout: one folder per run
        runs = [p for p in sorted(glob.glob(os.path.join(search_dir, "*"))) if os.path.isdir(p)]
        return search_dir, unique_folders(runs), {}
    # Any folder of runs: keep those whose args.json names the dataset and the model.
    runs, others, prefix = [], collections.Counter(), _words(f"{dataset}-{model}")
    for run_dir in folders_with_results(root):
        try:
            run_args = read_json(os.path.join(run_dir, "args.json"))
            name = run_args["data_args"]["dataset_name"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            warn(f"skipping {run_dir}: no readable args.json to tell its dataset ({type(e).__name__}: {e})")
            continue
        if name != dataset:
            continue
        used = backbone(run_args)
        if used and tag_matches(model, used):
            runs.append(run_dir)
        elif _words(os.path.basename(run_dir))[: len(prefix)] == prefix:  # named <dataset>-<model>...
            if used:  # e.g. run_script/run_rte_roberta.sh run with MODEL_NAME_OR_PATH=MiniLM
                warn(
                    f"{run_dir}: counted as a {model} run by its folder name, but its args.json records {used}"
                )
            runs.append(run_dir)
        else:
            others[used or "model not recorded"] += 1
    return root, unique_folders(runs), dict(others)


def folders_with_results(root: str) -> list[str]:
    """The folders under `root` (itself included) holding a best_results.json, sorted by that file's path; hidden
    folders are skipped (as glob's `**`). Links to folders are not followed: a `loop -> ..` link made glob count
    3 runs as 123, and two such links never ended. A link to a folder outside `root` is named in a
    warning; one inside is reached by its real path anyway."""
    if not os.path.isdir(root):
        return []
    real_root = os.path.realpath(root)

    def unreadable(e: OSError) -> None:
        warn(
            f"skipping {e.filename}: unreadable folder ({e.strerror}); make it readable to rank the runs in it"
        )

    found = []
    for folder, subfolders, files in os.walk(root, onerror=unreadable):  # followlinks=False
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in subfolders:
            path = os.path.join(folder, name)
            target = os.path.realpath(path)
            if os.path.islink(path) and os.path.commonpath([target, real_root]) != real_root:
                warn(
                    f"not following the folder link {path} -> {target}; to rank the runs there, pass --root {target}"
                )
        if "best_results.json" in files:
            found.append(folder)
    return sorted(found, key=lambda folder: os.path.join(folder, "best_results.json"))


def unique_folders(paths: list[str]) -> list[str]:
    """`paths` in order, each real folder once (os.path.realpath): a link such as `latest -> s2` is the run s2, not
    a second run of it. The path kept is the first that is not a link; each one dropped is named in a warning."""
    by_real: dict[str, list[str]] = {}
    for path in paths:
        by_real.setdefault(os.path.realpath(path), []).append(path)
    kept = set()
    for same in by_real.values():
        keep = next((p for p in same if not os.path.islink(p)), same[0])
        kept.add(keep)
        for path in same:
            if path != keep:
                warn(f"{path} is the same folder as {keep} (a link): its run is counted once, as {keep}")
    return [path for path in paths if path in kept]


def stopped_reason(results: dict) -> str | None:
    """Why training stopped early, or None for a complete run. After a non-finite loss run.py still writes
    best_results.json (the best of the epochs before it) with a "stopped" entry saying so
    (training/trainer.py save_stopped_results); any "stopped" entry counts."""
    if "stopped" not in results:
        return None
    reason = results["stopped"]
    return reason if isinstance(reason, str) and reason else f"stopped: {reason!r}"


def is_metric_number(value, finite: bool = True) -> bool:
    """A metric value: an int or float (not a bool), and with `finite` one that is finite as a float (NaN,
    Infinity and ints too large for a float count as missing: they cannot be ranked or averaged)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return not finite or math.isfinite(float(value))
    except OverflowError:  # a 400-digit int
        return False


def not_finite_reason(value: int | float) -> str:
    """Why a number is not a rankable metric, in words."""
    if isinstance(value, int):
        return f"an integer of {value.bit_length()} bits, too large for a float"
    return f"{value!r}, not a finite number"


def result_key(metric: str) -> str:
    """The best_results.json entry METRIC ranks by: best_eval_<METRIC>, the dev score of the best epoch; for
    METRIC test_<m>, best_test_<m>, the test score measured at that epoch (for reporting: select on dev)."""
    return f"best_{metric}" if metric.startswith("test_") else f"best_eval_{metric}"


def available_metrics(run_dirs: list[str]) -> list[str]:
    """The METRIC names found with a numeric value in the runs' best_results.json: the dev ones (best_eval_<METRIC>)
    sorted, then the test ones (best_test_<m> as test_<m>) sorted."""
    dev, test = set(), set()
    for run_dir in run_dirs:
        try:
            results = read_json(os.path.join(run_dir, "best_results.json"))
        except (OSError, ValueError):
            continue
        for k, v in results.items():
            if k.startswith("best_eval_") and is_metric_number(v):
                dev.add(k.removeprefix("best_eval_"))
            elif k.startswith("best_test_") and is_metric_number(v):
                test.add(k.removeprefix("best_"))
    return sorted(dev) + sorted(test)


def companion_columns(metric: str, results: list[dict]) -> dict[str, str]:
    """{header: best_results.json key} of the scores shown beside METRIC's, those some run has as a number: for a
    dev metric m, `test` (best_test_m) and, for a task with several test splits, `test_<split>`
    (best_test_test_<split>_m, training/best.py); for a test metric test_m, `dev` (best_eval_m)."""
    if metric.startswith("test_"):
        wanted = {"dev": f"best_eval_{metric.removeprefix('test_')}"}
    else:
        wanted = {"test": f"best_test_{metric}"}
        for key in sorted({k for r in results for k in r}):
            if key.startswith("best_test_test_") and key.endswith(f"_{metric}"):
                wanted[key[len("best_test_") : -len(metric) - 1]] = key
    return {h: k for h, k in wanted.items() if any(is_metric_number(r.get(k)) for r in results)}


# Metrics where smaller is better (matched as the name or its suffix after "_"); every other metric is maximised.
LOWER_IS_BETTER = ("loss", "runtime")


def lower_is_better(metric: str) -> bool:
    return any(metric == name or metric.endswith("_" + name) for name in LOWER_IS_BETTER)


def configurations(rows: list[dict], metric: str) -> list[dict]:
    """The configurations of the complete runs with args.json, best mean first (ties: more seeds first, then the
    path order of their first run). `rows`: in path order, each with "metric", "stopped" and "config" (the
    same_value_key of its configuration; None without args.json). Each: {"runs": its complete runs in path order,
    "best": the best of them (ties: the first), "stopped": its runs stopped by a non-finite loss (left out), "n",
    "mean", "std" (sample std; None for one seed)}."""
    sign = 1 if lower_is_better(metric) else -1
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if row["config"] is not None:
            groups.setdefault(row["config"], []).append(row)
    out = []
    for members in groups.values():  # in the path order of their first run
        runs = [m for m in members if not m["stopped"]]
        if not runs:
            continue
        values = [r["metric"] for r in runs]
        out.append(
            {
                "runs": runs,
                "best": min(runs, key=lambda r: sign * r["metric"]),
                "stopped": [m for m in members if m["stopped"]],
                "n": len(runs),
                "mean": statistics.mean(values),
                "std": statistics.stdev(values) if len(values) > 1 else None,
            }
        )
    return sorted(out, key=lambda c: (sign * c["mean"], -c["n"]))


def rank(rows: list[dict], metric: str, configs: list[dict] = ()) -> list[dict]:
    """Complete runs with args.json first, by their configuration's rank in `configs` (configurations(rows)), best
    seed first within it; then complete runs without args.json, then runs stopped by a non-finite loss (partial
    results), each by metric. Ties keep path order."""
    sign = 1 if lower_is_better(metric) else -1
    place = {id(run): i for i, config in enumerate(configs) for run in config["runs"]}
    return sorted(
        rows,
        key=lambda r: (r["stopped"] is not None, not r["args_json"], place.get(id(r), 0), sign * r["metric"]),
    )
