"""Command-line arguments: ModelArguments, DataTrainingArguments and HF TrainingArguments, with help on every field,
plus each task family's own dataclass (tasks.registry.family_arguments(); today QA's, in tasks/qa.py).

`get_args()` returns (model_args, data_args, training_args, *family_args), as the original's (model_args, data_args,
training_args, qa_args), after the checks across flags; `save_args()` writes them as args.json, which search.py reads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
from dataclasses import dataclass, field

import torch
from transformers import HfArgumentParser, TrainingArguments

from model.checkpoint import resolve_checkpoint_dir
from model.config import MethodArguments
from model.loading import check_model_path
from tasks.qa import QuestionAnsweringArguments  # noqa: F401  (re-exported: the original's import path)
from tasks.registry import FAMILIES, family_arguments, get_task
from training.flags import given, translate_old_flags
from training.levers import TrainingLevers
from training.run_folder import write_record
from training.schedules import resolve_lr_schedule

logger = logging.getLogger(__name__)

# --backbone_dtype -> the mixed-precision flag it needs: autocast runs the float32 prefix and head with that backbone
BACKBONE_DTYPES = {"float32": None, "bfloat16": "bf16", "float16": "fp16"}


@dataclass
class ModelArguments(MethodArguments):
    """The backbone's arguments; the method's flags (--prefix, --prompt, --pre_seq_len, ...) are MethodArguments."""

    _argument_group_name = "model and method"  # a --help section (HfArgumentParser)

    model_name_or_path: str = field(
        metadata={"help": "Path to a local pretrained model directory or a Hub id (e.g. roberta-large)."}
    )
    config_name: str | None = field(default=None, metadata={"help": "Config name/path if not the model's."})
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer name/path if not the model's."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded models are cached."})
    use_fast_tokenizer: bool = field(default=True, metadata={"help": "Use a fast (Rust) tokenizer."})
    model_revision: str = field(default="main", metadata={"help": "Model version: branch, tag or commit id."})
    use_auth_token: bool = field(
        default=False,
        metadata={
            "help": "Accepted for the original's command lines and ignored (with a warning): transformers "
            "removed it; log in with `hf auth login` instead."
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Allow custom modelling code from the model repo. Off unless you trust it."},
    )
    hidden_dropout_prob: float = field(
        default=0.1,
        metadata={
            "help": "Dropout on the prefix and before the head; as in the original it also sets the backbone's."
        },
    )
    ptuning_checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "Load a trained prefix/prompt + head (a directory with model.safetensors written by this project, "
            "e.g. <output_dir>/best_model) onto the backbone before evaluating or predicting."
        },
    )
    attn_implementation: str = field(
        default="sdpa",
        metadata={"help": "Backbone attention kernel: 'sdpa' or 'eager' (DeBERTa is always eager)."},
    )
    backbone_dtype: str = field(
        default="float32",
        metadata={
            "help": "Store the frozen backbone in 'bfloat16' (with --bf16) or 'float16' (with --fp16): it never "
            "steps, so it needs no float32 copy. The prefix/prompt and the head stay float32. --prefix/--prompt "
            "only. At roberta-large size it cut P-tuning v2's peak memory from 0.58x to 0.44x fine-tuning's "
            "(benchmarks/results/gpu.json)."
        },
    )

    def __post_init__(self):
        super().__post_init__()  # the method's checks (model/config.py)
        if self.use_auth_token:
            logger.warning(
                "--use_auth_token is ignored (transformers removed it): log in with `hf auth login`."
            )
        if not 0.0 <= self.hidden_dropout_prob < 1.0:
            raise ValueError(f"--hidden_dropout_prob must be in [0, 1), got {self.hidden_dropout_prob}.")
        check_model_path("--model_name_or_path", self.model_name_or_path)
        for name in ("config_name", "tokenizer_name"):
            if getattr(self, name):
                check_model_path(f"--{name}", getattr(self, name))
        if self.ptuning_checkpoint is not None and self.init_prefix_from is not None:
            raise ValueError(
                "--init_prefix_from starts training from another run's prefix; --ptuning_checkpoint loads a trained "
                "model whole (for --do_eval/--do_predict): pass one."
            )
        # a run folder stands for its best_model/ (the best dev epoch)
        if self.ptuning_checkpoint is not None:
            self.ptuning_checkpoint = resolve_checkpoint_dir(self.ptuning_checkpoint)
            if not os.path.isfile(os.path.join(self.ptuning_checkpoint, "model.safetensors")):
                raise FileNotFoundError(
                    f"--ptuning_checkpoint {self.ptuning_checkpoint!r} holds no model.safetensors: point it at a "
                    "run folder or its best_model/ written by run.py."
                )
        if self.attn_implementation not in ("sdpa", "eager"):
            raise ValueError(
                f"--attn_implementation must be 'sdpa' or 'eager', got {self.attn_implementation!r}."
            )
        if self.backbone_dtype not in BACKBONE_DTYPES:
            raise ValueError(
                f"--backbone_dtype must be one of {', '.join(BACKBONE_DTYPES)}, got {self.backbone_dtype!r}."
            )
        if self.backbone_dtype != "float32" and self.trains_backbone:
            raise ValueError(
                f"--backbone_dtype {self.backbone_dtype} needs a frozen backbone (--prefix or --prompt): "
                f"{self.method} steps backbone weights, which stay float32 (--bf16/--fp16 give mixed precision)."
            )


@dataclass
class DataTrainingArguments:
    _argument_group_name = "data"
    task_name: str = field(metadata={"help": f"Task family, one of: {', '.join(FAMILIES)}."})
    dataset_name: str = field(
        metadata={"help": "Dataset of the family, e.g. rte, boolq, conll2003, squad (see README for all)."}
    )
    dataset_config_name: str | None = field(
        default=None,
        metadata={
            "help": "Accepted for the original's command lines and ignored (with a warning): each dataset's "
            "Hub configuration comes from the task registry."
        },
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "Local data in the official layout, e.g. path/to/SuperGLUE holding RTE/{train,val,test}.jsonl. "
            "Without it (and without --*_file) the Hub is used."
        },
    )
    train_file: str | None = field(
        default=None, metadata={"help": "Explicit training file (overrides --data_dir)."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Explicit validation file."})
    test_file: str | None = field(default=None, metadata={"help": "Explicit test file."})
    max_seq_length: int | None = field(
        default=None,
        metadata={
            "help": "Max tokens per input after tokenisation. Default: the family's, 384 for qa (as HF run_qa and "
            "the original's SQuAD code), 128 otherwise."
        },
    )
    doc_stride: int = field(
        default=128,
        metadata={"help": "QA: overlap (tokens) between windows of a long context; < max_seq_length."},
    )
    overwrite_cache: bool = field(default=False, metadata={"help": "Re-tokenise instead of using the cache."})
    pad_to_max_length: bool = field(
        default=True, metadata={"help": "Pad to max_seq_length (else pad each batch dynamically)."}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenisation."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Truncate the training set (debugging)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Truncate the validation set (examples)."}
    )
    max_predict_samples: int | None = field(
        default=None, metadata={"help": "Truncate the test set (examples)."}
    )
    template_id: int = field(default=0, metadata={"help": "WiC/WSC template: 0 or 1 (docs/REFERENCE.md)."})

    def __post_init__(self):
        if self.dataset_config_name is not None:
            logger.warning(
                "--dataset_config_name is ignored: the Hub configuration comes from the task registry."
            )
        # the registry is the one list of families and datasets; an unknown name is a ValueError listing the choices
        task = get_task(self.task_name, self.dataset_name)
        if self.max_seq_length is None:  # the task's default, so the shortest QA command runs
            self.max_seq_length = task.hints.max_seq_length
        if self.max_seq_length < 8:
            raise ValueError(f"--max_seq_length must be >= 8, got {self.max_seq_length}.")
        if self.template_id not in (0, 1):
            raise ValueError(f"--template_id must be 0 or 1, got {self.template_id}.")
        if self.doc_stride < 0:
            raise ValueError(f"--doc_stride must be >= 0 (0: windows do not overlap), got {self.doc_stride}.")
        if task.args.check is not None:  # e.g. QA: --doc_stride < --max_seq_length
            task.args.check(self)
        for name in (
            "max_train_samples",
            "max_eval_samples",
            "max_predict_samples",
            "preprocessing_num_workers",
        ):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be >= 1 (or left unset for all), got {value}.")
        for name in ("data_dir", "train_file", "validation_file", "test_file"):
            path = getattr(self, name)
            if path is not None and not os.path.exists(path):
                raise FileNotFoundError(f"--{name} {path!r} does not exist.")


@dataclass
class PTuningTrainingArguments(TrainingLevers, TrainingArguments):
    """HF TrainingArguments, the original's knobs that transformers dropped, the head levers (training/levers.py)."""

    _argument_group_name = "HF TrainingArguments (transformers' own; see its docs)"

    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Allow writing into a non-empty output_dir (else it is refused)."}
    )
    lr_schedule: str = field(
        default="auto",
        metadata={
            "help": "'auto' = the original's per family (HF linear decay for SuperGLUE/GLUE, x--lr_decay per epoch "
            "with no warm-up for NER/SRL/QA), unless --lr_scheduler_type is given, which then rules ('hf'); "
            "'linear' (HF linear decay, with --warmup_steps); 'exponential' (x--lr_decay per epoch; HF schedule "
            "flags are refused with it); 'hf' = use --lr_scheduler_type as given."
        },
    )
    lr_decay: float = field(default=0.95, metadata={"help": "Per-epoch factor of the exponential schedule."})
    eval_test_every_epoch: bool = field(
        default=False,
        metadata={
            "help": "With --do_train --do_predict: score the labelled test sets at every new best dev epoch (the "
            "original's protocol; gives the per-epoch test curve in trainer_state.json). Default: once after "
            "training with the best epoch's state, the same best_test_* numbers at a fraction of the cost."
        },
    )
    group_eval_by_length: bool = field(
        default=True,
        metadata={
            "help": "Evaluate in batches of similar length (less padding, same predictions, returned in input "
            "order). False: batches in input order, as the stock Trainer."
        },
    )

    def __post_init__(self):
        # HF turns an unset metric_for_best_model into "loss"; remember whether the user chose one, so run.py can
        # default it to the task's main metric instead.
        self.metric_for_best_model_given = self.metric_for_best_model is not None
        if self.lr_schedule not in ("auto", "linear", "exponential", "hf"):
            raise ValueError(
                f"--lr_schedule must be auto, linear, exponential or hf, got {self.lr_schedule!r}."
            )
        # `not 0 < x` also refuses NaN.
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(
                f"--lr_decay must be in (0, 1] (the lr is multiplied by it every epoch; 1 = constant), got "
                f"{self.lr_decay}."
            )
        if not 0.0 < self.learning_rate < math.inf:
            raise ValueError(f"--learning_rate must be a positive number, got {self.learning_rate}.")
        if self.max_steps <= 0 and not 0.0 < self.num_train_epochs < math.inf:
            raise ValueError(
                f"--num_train_epochs must be > 0 (or set --max_steps), got {self.num_train_epochs}."
            )
        existing = os.path.abspath(self.output_dir or ".")
        while not os.path.exists(existing):  # the nearest part of the path that exists must be a folder
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise ValueError(f"--output_dir {self.output_dir!r}: {existing!r} is a file, not a folder.")
        if self.dataloader_pin_memory and not torch.accelerator.is_available():
            self.dataloader_pin_memory = False  # it only helps copies to an accelerator (else a warning)
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}.")
        for name in (
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        super().__post_init__()


USAGE = (
    "run.py --model_name_or_path M --task_name FAMILY --dataset_name D [--prefix | --prompt] "
    "[--do_train] [--do_eval] [--do_predict] [flags]"
)


def build_parser() -> HfArgumentParser:
    """The three standard dataclasses, then each family's own (tasks.registry.family_arguments()). --help lists the
    project's flags first, in sections (model and method, data, the project's training flags, each family's), then
    the ~100 HF TrainingArguments."""
    parser = HfArgumentParser(
        (ModelArguments, DataTrainingArguments, PTuningTrainingArguments, *family_arguments().values()),
        usage=USAGE,
    )
    # argparse keeps sections and their flags in these lists (no public API to reorder them)
    hf = next(g for g in parser._action_groups if g.title == PTuningTrainingArguments._argument_group_name)
    ours = parser.add_argument_group("training (the project's)")
    own = {f"--{name}" for cls in (PTuningTrainingArguments, TrainingLevers) for name in cls.__annotations__}
    for action in [a for a in hf._group_actions if own & set(a.option_strings)]:
        hf._group_actions.remove(action)
        ours._group_actions.append(action)
    groups = parser._action_groups
    groups.remove(ours)  # after data, before the families' sections
    groups.insert(
        next(i for i, g in enumerate(groups) if g.title == DataTrainingArguments._argument_group_name) + 1,
        ours,
    )
    groups.remove(hf)
    groups.append(hf)
    return parser


def _usage_error(parser: HfArgumentParser, message: str) -> None:
    """Exit 2 with one line (argparse's parser.error would first print the 200-line usage of every HF flag)."""
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    sys.exit(2)


def get_args(argv: list[str] | None = None):
    """argv (default sys.argv[1:]) -> (model_args, data_args, training_args, *family_args), or one usage line."""
    argv = translate_old_flags(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except (ValueError, FileNotFoundError) as err:  # a check in __post_init__ failed: one line, no traceback
        _usage_error(parser, str(err))
    if unknown:
        _usage_error(parser, f"unrecognised arguments: {' '.join(unknown)} (see `python run.py --help`)")
    model_args, data_args, training_args = parsed[:3]
    autocast = BACKBONE_DTYPES[model_args.backbone_dtype]
    if autocast and not getattr(training_args, autocast):
        _usage_error(
            parser,
            f"--backbone_dtype {model_args.backbone_dtype} needs --{autocast}: autocast runs the float32 prefix "
            f"and head with the {model_args.backbone_dtype} backbone.",
        )
    if training_args.do_train and training_args.do_eval and not given(argv, "eval_strategy"):
        # as the original's scripts: score dev every epoch, so best_results.json and best_model/ are written
        logger.warning(
            "--do_eval without --eval_strategy: dev is scored every epoch (--eval_strategy epoch, as the original's "
            "scripts), giving best_results.json and best_model/; pass --eval_strategy no to score it once at the end."
        )
        return get_args([*argv, "--eval_strategy", "epoch"])
    if training_args.do_train and training_args.eval_strategy == "no" and training_args.do_eval:
        logger.warning(
            "--eval_strategy no: dev is scored once at the end; no best_results.json or best_model/."
        )
    untrained = not (training_args.do_train or model_args.ptuning_checkpoint)
    if untrained and (training_args.do_eval or training_args.do_predict):
        what = "head" if model_args.trains_backbone else f"{model_args.method} and head"
        _usage_error(
            parser,
            f"--do_eval/--do_predict without --do_train or --ptuning_checkpoint would score an untrained {what}: "
            "pass --ptuning_checkpoint <run folder or its best_model/> (or --do_train).",
        )
    task = get_task(data_args.task_name, data_args.dataset_name)
    if training_args.load_best_model_at_end and not training_args.metric_for_best_model_given:
        best = task.resolve(
            data_args
        ).main_metric  # HF would rank by the loss; own data: its file's (pearson ...)
        training_args.metric_for_best_model, training_args.greater_is_better = best, True
    problem = resolve_lr_schedule(training_args, task, argv)
    if problem:
        _usage_error(parser, problem)
    for family_args in parsed[3:]:
        if isinstance(family_args, task.args.cls or ()):
            for name, value in task.args.overrides.items():  # e.g. squad_v2: version_2_with_negative
                setattr(family_args, name, value)
    return tuple(parsed)


def args_payload(model_args, data_args, training_args, *family_args, task=None) -> dict:
    """The resolved arguments as args.json records them: one section per dataclass ("qa_args" for QA's); with a
    `task` of your own data, the labels its training file resolved to as data_args.own_data (compared on resume)."""
    own = {"own_data": task.own_data.description} if task is not None and task.own_data is not None else {}
    payload = {
        "model_args": {**dataclasses.asdict(model_args), "method": model_args.method},  # prefix, prompt …
        "data_args": {**dataclasses.asdict(data_args), **own},
        "training_args": training_args.to_dict(),
    }
    for section, args in zip(family_arguments(), family_args, strict=True):
        payload[section] = dataclasses.asdict(args)
    return payload


def save_args(output_dir: str, *parsed, task=None) -> str:
    """args.json (args_payload of the parsed arguments) next to the results, atomically and only when it changed."""
    text = json.dumps(args_payload(*parsed, task=task), indent=2, default=str)
    return write_record(os.path.join(output_dir, "args.json"), text)
