"""Train / evaluate / predict one P-tuning v2 (or prompt-tuning, or fine-tuning) run.

    python run.py --model_name_or_path roberta-large --task_name superglue --dataset_name rte \
        --data_dir path/to/SuperGLUE --prefix --pre_seq_len 128 --do_train --do_eval \
        --eval_strategy epoch --save_strategy epoch --output_dir checkpoints/rte-roberta

Every flag: `python run.py --help` (arguments.py). Results land in --output_dir: args.json, all_results.json,
best_results.json (best dev epoch, as search.py reads it), best_model/ (prefix + head only) and predictions.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys

import datasets
import torch
import transformers
from transformers import set_seed

from arguments import args_payload, get_args, save_args
from model.checkpoint import task_record
from model.loading import load_config, load_tokenizer, read_checkpoint
from model.ptuning import PTuningError
from model.transfer import transfer_prefix
from model.utils import get_model
from tasks import DataError, get_task
from training.data import build_collator, drop_placeholder_labels, has_labels, limit_samples, tokenize
from training.eval_order import length_order
from training.run_folder import (
    RunFolderError,
    RunLock,
    claim_for_training,
    clear_previous_run,
    refuse_training_folder_for_eval,
)
from training.trainer import NonFiniteLossError, PTuningTrainer

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> dict:
    model_args, data_args, training_args, *family_args = get_args(argv)  # family_args: e.g. QA's qa_args

    # -- logging ---------------------------------------------------------------------------------------------------
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    for lib_logger in (logger, logging.getLogger("model"), logging.getLogger("training")):
        lib_logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)

    # -- the output folder belongs to this run while it runs (a second run into it is refused) --------------------
    with RunLock(training_args.output_dir, enabled=trainer_is_main(training_args)):
        results = run(model_args, data_args, training_args, *family_args)
    if trainer_is_main(training_args):
        print(results_line(training_args.output_dir))
    return results


def run(model_args, data_args, training_args, *family_args) -> dict:
    # -- task (your own data: its labels read from --train_file; the family's own arguments bound); resume only the
    # same run, never over another run's records
    task = get_task(data_args.task_name, data_args.dataset_name).resolve(data_args).bind_args(family_args)
    last_checkpoint = None
    if training_args.do_train:
        last_checkpoint = claim_for_training(
            training_args.output_dir,
            training_args.overwrite_output_dir,
            args_payload(model_args, data_args, training_args, *family_args, task=task),
            resume_from_checkpoint=training_args.resume_from_checkpoint,  # checked against its own run's args.json
        )
    else:
        refuse_training_folder_for_eval(training_args.output_dir)

    # -- seed, data ------------------------------------------------------------------------------------------------
    set_seed(training_args.seed)
    raw = limit_samples(task.load(data_args, needed_splits(task, training_args)), data_args)

    # -- tokenizer, features, model --------------------------------------------------------------------------------
    hub = dict(
        cache_dir=model_args.cache_dir,
        revision=model_args.model_revision,
        trust_remote_code=model_args.trust_remote_code,
    )
    config = load_config(model_args.config_name or model_args.model_name_or_path, task, **hub)
    tokenizer = load_tokenizer(
        model_args.tokenizer_name or model_args.model_name_or_path,
        task,
        config,
        use_fast=model_args.use_fast_tokenizer,
        **hub,
    )
    features = tokenize(raw, task, tokenizer, data_args)
    model = get_model(model_args, task.task_type, config)
    # what predict.py needs to label raw records with this checkpoint, saved with it
    model.task_record = task_record(task, data_args, family_args, model_args.model_name_or_path)
    if model_args.ptuning_checkpoint:
        load_ptuning_checkpoint(model, model_args.ptuning_checkpoint)
    if model_args.init_prefix_from:  # another run's prefix, and its head if the labels are this task's
        transfer_prefix(model, model_args.init_prefix_from, task.label_list)
    collator = build_collator(task, tokenizer, data_args, training_args)
    features = drop_placeholder_labels(features, task.test_splits)  # unlabelled test splits: predictions only
    check_longest_examples(model, features, collator)  # P+T too long etc.: refused before anything is written
    labelled_tests = {
        s: (features[s], raw[s]) for s in task.test_splits if s in features and has_labels(features[s])
    }
    if training_args.do_train and training_args.overwrite_output_dir and trainer_is_main(training_args):
        clear_previous_run(training_args.output_dir)  # start afresh: no old results beside the new args.json
    trainer = PTuningTrainer(
        model=model,
        args=training_args,
        train_dataset=features.get("train"),
        eval_dataset=features.get("validation"),
        processing_class=tokenizer,
        data_collator=collator,
        task=task,
        data_args=data_args,
        eval_examples=raw.get("validation"),
        test_sets=labelled_tests if training_args.do_predict else {},
        lr_schedule=task.hints.schedule if training_args.lr_schedule == "auto" else training_args.lr_schedule,
        lr_decay=training_args.lr_decay,
        eval_test_every_epoch=training_args.eval_test_every_epoch,
        group_eval_by_length=training_args.group_eval_by_length,
    )
    if trainer.is_world_process_zero():
        save_args(training_args.output_dir, model_args, data_args, training_args, *family_args, task=task)
    results = {}

    # -- train -----------------------------------------------------------------------------------------------------
    if training_args.do_train:
        try:
            train_result = trainer.train(resume_from_checkpoint=last_checkpoint)
        except NonFiniteLossError as err:  # keep what the finished epochs showed, say exactly what to rerun
            raise NonFiniteLossError(trainer.save_stopped_results(str(err))) from None
        trainer.save_model()  # trainable part only (prefix/prompt + head) unless fine-tuning
        metrics = trainer.save_train_results(
            {
                **train_result.metrics,
                "train_samples": len(features["train"]),
                "trainable_params": model.num_parameters(only_trainable=True),
                "total_params": model.num_parameters(),
            }
        )  # a rerun of a finished run trains nothing and keeps the recorded train_results.json
        trainer.save_state()
        best = trainer.best_results()
        if best:
            trainer.log_metrics("best", best)
            trainer.save_metrics("best", best, combined=False)  # best_results.json, as the original
        results.update(metrics)

    # -- evaluate --------------------------------------------------------------------------------------------------
    if training_args.do_eval:
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(features["validation"])
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)

    # -- predict ---------------------------------------------------------------------------------------------------
    if training_args.do_predict:
        for split in task.test_splits:
            prefix = "test" if len(task.test_splits) == 1 else f"test_{split}"
            predictions, metrics = trainer.predict_split(features[split], raw[split], prefix)
            if trainer.is_world_process_zero():
                write_predictions(
                    task,
                    predictions,
                    features[split],
                    raw[split],
                    data_args,
                    os.path.join(training_args.output_dir, f"predict_results_{split}.jsonl"),
                )
            if metrics:  # an unlabelled split has predictions only
                trainer.log_metrics(prefix, metrics)
                trainer.save_metrics(prefix, metrics)
                results.update(metrics)
    return results


# ---- helpers (each small and used once by main) ----------------------------------------------------------------
def trainer_is_main(training_args) -> bool:
    return training_args.process_index == 0


def check_longest_examples(model, features, collator) -> None:
    """One forward pass on the longest example of each split, before anything is written: a prefix that does not
    fit the position table (P + T) or a backbone that ignores the prefix stops the run here, not after args.json.
    A --backbone_dtype backbone runs under its autocast, as the Trainer's --bf16/--fp16 will run it."""
    keep = {"input_ids", "attention_mask", "token_type_ids", "labels", "start_positions", "end_positions"}
    weight = next(model.backbone.parameters())
    half = weight.dtype != torch.float32
    was_training = model.training
    model.eval()
    with torch.no_grad(), torch.autocast(weight.device.type, dtype=weight.dtype, enabled=half):
        for ds in features.values():
            if len(ds) == 0:
                continue
            row = ds[int(length_order(ds)[0])]
            model(**collator([{k: v for k, v in row.items() if k in keep}]))
    model.train(was_training)


def results_line(output_dir: str) -> str:
    """The run's last line: where its results are, best_results.json first (what search.py reads)."""
    folder = os.path.abspath(output_dir)
    names = [
        n for n in ("all_results.json", "best_model", "args.json") if os.path.exists(os.path.join(folder, n))
    ]
    if os.path.isdir(folder):
        names += sorted(n for n in os.listdir(folder) if n.startswith("predict_results_"))
    best = os.path.join(folder, "best_results.json")
    if os.path.exists(best):
        return f"Results: {best} (also {', '.join(names)} in {folder})"
    found = ", ".join(names) or "nothing"
    return f"Results in {folder}: {found} (no best_results.json: dev was not scored during training)"


def os_error_line(err: OSError) -> str:
    """One line for a file-system failure (unwritable --output_dir, a full disk ...), naming the path and the fix."""
    where = f" ({err.filename})" if err.filename else ""
    fix = ""
    if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        fix = (
            " Free space or choose another --output_dir; the same command then resumes from the last checkpoint "
            "(add --overwrite_output_dir if none was saved)."
        )
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.ENOENT):
        fix = " Choose an --output_dir (and data paths) that you can write and read."
    return f"{err.strerror or err}{where}.{fix}"


def needed_splits(task, training_args) -> list[str]:
    splits = []
    if training_args.do_train:
        splits.append("train")
    if training_args.do_eval or (training_args.do_train and training_args.eval_strategy != "no"):
        splits.append("validation")
    if training_args.do_predict:
        splits.extend(task.test_splits)
    if not splits:
        raise SystemExit("error: nothing to do: pass --do_train, --do_eval and/or --do_predict.")
    return splits


def load_ptuning_checkpoint(model, directory: str) -> None:
    checkpoint = read_checkpoint(directory, model.config, model.config.name_or_path)
    labels, own = (checkpoint.meta.get("task") or {}).get("labels"), model.task_record["labels"]
    if labels is not None and labels != own:  # the head may fit (same count), the names do not: never relabel
        raise PTuningError(
            f"{checkpoint.path} was trained with the labels {labels}, this run's data gives {own}: evaluate it on "
            "data with the labels it was trained with (your own data: the same --train_file)."
        )
    model.load_state_dict(checkpoint.tensors)
    logger.info("Loaded the trained %s from %s", model.method, checkpoint.path)


def write_predictions(task, predictions, features, examples, data_args, path) -> None:
    if task.predictions_to_records is None:
        return
    records = task.predictions_to_records(predictions, features, examples, data_args)
    with open(path, "w") as f:
        for row in records:
            f.write(json.dumps(row) + "\n")
    logger.info("Wrote %d predictions to %s", len(records), path)


if __name__ == "__main__":
    try:
        main()
    except (
        DataError,
        PTuningError,
        NonFiniteLossError,
        RunFolderError,
    ) as err:  # user-fixable: one clear line, no traceback
        raise SystemExit(f"error: {err}") from None
    except OSError as err:  # the file system refused: one line naming the path
        raise SystemExit(f"error: {os_error_line(err)}") from None
