"""QA family (--task_name qa): squad (v1.1), squad_v2 (2.0). Extractive span prediction over sliding windows.

Raw rows (the Hub's rajpurkar/squad schema): {"id", "title", "context", "question",
"answers": {"text": [...], "answer_start": [...]}} (empty lists = unanswerable, SQuAD 2.0).
Official local layout: {SQuAD,squad,.}/train-v1.1.json + dev-v1.1.json (squad) or train-v2.0.json +
dev-v2.0.json (squad_v2) -> splits train / validation. SQuAD has no public test set: the "test" split exists
only through --test_file (same JSON layout). Without local files: rajpurkar/squad(_v2) from the Hub.

Features (HF run_qa-style, as the original tasks/qa/dataset.py): question left-stripped, (question, context)
with truncation="only_second" (sides swapped for left-padding tokenizers), max_length=--max_seq_length,
windows overlapping by --doc_stride; start_positions/end_positions are the answer's first/last context
token, or the CLS index when the window does not hold the whole (first) answer or there is none. Every
feature also keeps "example_id" and "offset_mapping" (None outside the context) for post-processing: the
trainer must not feed those two columns to the model.
Deviation: the original hard-coded 384/128 and ignored --max_seq_length; the run scripts pass 384 here.

The family's own arguments are QuestionAnsweringArguments below (Task.args; on the command line through
arguments.py, recorded as "qa_args" in args.json). compute_metrics / predictions_to_records take them as the
keyword `task_args` (run.py binds it with Task.bind_args):
    compute_metrics(predictions, features, examples, data_args, task_args=None)
with predictions = (start_logits, end_logits) over `features` (default arguments when task_args is None).
No-answer prediction is on when task_args.version_2_with_negative is set or the dataset has unanswerable
questions (QaSpec.unanswerable: squad_v2, which also forces the flag on the command line; the original keyed it
on the dataset name only). Metrics: SQuAD "exact_match" and "f1" in percent; squad_v2 adds HasAns_/NoAns_
exact, f1 and total.

Raw user records (Task.read_example, for predict.py): {"question", "context"[, "title"]} (strings) -> one row
with id = str(the record's position) and no answers; prediction rows keyed "prediction_text".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import datasets

from tasks.io import (
    check_record,
    find_split_files,
    load_from_hub,
    read_json,
    require_examples,
    uses_local_files,
)
from tasks.qa_postprocess import postprocess_predictions, squad_scores
from tasks.registry import DataError, FamilyArgs, Prediction, Schedule, Task, TrainingHints, register_specs
from tasks.task_type import TaskType


@dataclass
class QuestionAnsweringArguments:
    _argument_group_name = "question answering (--task_name qa)"
    n_best_size: int = field(default=20, metadata={"help": "Start/end candidates kept per window."})
    max_answer_length: int = field(default=30, metadata={"help": "Longest answer span in tokens."})
    version_2_with_negative: bool = field(
        default=False, metadata={"help": "Allow 'no answer' (SQuAD 2.0). Implied by --dataset_name squad_v2."}
    )
    null_score_diff_threshold: float = field(
        default=0.0, metadata={"help": "Predict no answer when null score - best span score exceeds this."}
    )

    def __post_init__(self):
        for name in ("n_best_size", "max_answer_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if not math.isfinite(self.null_score_diff_threshold):
            raise ValueError(
                f"--null_score_diff_threshold must be a finite number, got {self.null_score_diff_threshold}."
            )


@dataclass(frozen=True)
class QaSpec:
    """One SQuAD-style dataset."""

    name: str  # --dataset_name
    layout: dict[str, tuple[str, ...]]  # split -> official file name(s) under one of SUBDIRS
    hub_id: str  # used when no local file is given
    unanswerable: bool = False  # has questions without an answer: no-answer prediction is on (SQuAD 2.0)


SUBDIRS = ("SQuAD", "squad", "")
SPECS = (
    QaSpec("squad", {"train": ("train-v1.1.json",), "validation": ("dev-v1.1.json",), "test": ()},
           "rajpurkar/squad"),
    QaSpec("squad_v2", {"train": ("train-v2.0.json",), "validation": ("dev-v2.0.json",), "test": ()},
           "rajpurkar/squad_v2", unanswerable=True),
)  # fmt: skip
FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        },
    }
)
SQUAD_LAYOUT = (
    "{'data': [{'title', 'paragraphs': [{'context', 'qas': [{'id', 'question', "
    "'answers': [{'text', 'answer_start'}]}]}]}]}"
)


def read_squad_json(path: str) -> datasets.Dataset:
    """The official SQuAD JSON, flattened to one row per question."""
    payload = read_json(path)  # UTF-8 with or without BOM; bad bytes and syntax errors name file:line
    articles = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(articles, list):
        raise DataError(f"{path}: expected the SQuAD layout {SQUAD_LAYOUT}.")
    rows = {name: [] for name in FEATURES}
    for a, article in enumerate(articles):
        for p, para in enumerate(article.get("paragraphs", [])):
            for q, qa in enumerate(para.get("qas", [])):
                where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                try:
                    answers = qa["answers"]
                    row = {
                        "id": str(qa["id"]),
                        "title": article.get("title", ""),
                        "context": para["context"],
                        "question": qa["question"],
                        "answers": {
                            "text": [ans["text"] for ans in answers],
                            "answer_start": [int(ans["answer_start"]) for ans in answers],
                        },
                    }
                except (KeyError, TypeError, ValueError) as err:
                    raise DataError(
                        f"{where}: missing or bad field {err}; expected the layout {SQUAD_LAYOUT}."
                    ) from None
                for name, value in row.items():
                    rows[name].append(value)
    require_examples(rows["id"], path, f"questions in the SQuAD layout {SQUAD_LAYOUT}")
    return datasets.Dataset.from_dict(rows, features=FEATURES)


def read_example(record: dict, index: int, where: str) -> list[dict]:
    """One user record {"question", "context"[, "title"]} -> the raw row of one unanswered question."""
    check_record(
        record, {"question": str, "context": str} | ({"title": str} if "title" in record else {}), where
    )
    texts = {"title": record.get("title", ""), "context": record["context"], "question": record["question"]}
    return [{"id": str(index), **texts, "answers": {"text": [], "answer_start": []}}]


def load(data_args, splits, *, spec: QaSpec) -> datasets.DatasetDict:
    if "test" in splits and not data_args.test_file:
        raise DataError(
            "SQuAD has no public test split: pass --test_file (official JSON layout) or drop --do_predict."
        )
    if not uses_local_files(data_args):
        return load_from_hub(spec.hub_id, None, splits)
    paths = find_split_files(data_args, splits, SUBDIRS, spec.layout)
    return datasets.DatasetDict({split: read_squad_json(path) for split, path in paths.items()})


def preprocess(batch, tokenizer, data_args) -> dict:
    """Examples -> overlapping windows (one example may give several features)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "QA needs a fast tokenizer (offset mappings locate answers); load it with use_fast=True."
        )
    pad_right = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in batch["question"]]  # leading spaces waste window room (as HF run_qa)
    contexts = batch["context"]
    enc = tokenizer(
        questions if pad_right else contexts,
        contexts if pad_right else questions,
        truncation="only_second" if pad_right else "only_first",
        max_length=data_args.max_seq_length,
        stride=data_args.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length" if data_args.pad_to_max_length else False,
    )
    context_seq = 1 if pad_right else 0
    sample_map = enc.pop("overflow_to_sample_mapping")
    offsets_all = enc.pop("offset_mapping")
    starts, ends, example_ids, offsets_out = [], [], [], []
    for i, offsets in enumerate(offsets_all):
        seq_ids = enc.sequence_ids(i)
        input_ids = enc["input_ids"][i]
        cls = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        example = sample_map[i]
        answers = batch["answers"][example]
        context_tokens = [k for k, s in enumerate(seq_ids) if s == context_seq]
        start = end = cls
        if answers["text"] and context_tokens:
            char_start = answers["answer_start"][0]
            char_end = char_start + len(answers["text"][0])
            first, last = context_tokens[0], context_tokens[-1]
            if offsets[first][0] <= char_start and offsets[last][1] >= char_end:
                # last context token starting at/before the answer; first one ending at/after it
                start = max(k for k in context_tokens if offsets[k][0] <= char_start)
                end = min(k for k in context_tokens if k >= start and offsets[k][1] >= char_end)
        starts.append(start)
        ends.append(end)
        example_ids.append(batch["id"][example])
        offsets_out.append([o if s == context_seq else None for o, s in zip(offsets, seq_ids, strict=True)])
    out = {key: list(value) for key, value in enc.items()}
    out.update(start_positions=starts, end_positions=ends, example_id=example_ids, offset_mapping=offsets_out)
    return out


def check_args(data_args) -> None:
    if data_args.doc_stride >= data_args.max_seq_length:
        raise ValueError(
            f"--doc_stride ({data_args.doc_stride}) must be smaller than --max_seq_length "
            f"({data_args.max_seq_length}): lower --doc_stride or raise --max_seq_length (HF run_qa: 128 and 384)."
        )


def _qa_predictions(predictions, features, examples, qa_args, spec: QaSpec, scores: dict | None = None):
    qa_args = qa_args or QuestionAnsweringArguments()
    start_logits, end_logits = predictions[0], predictions[1]
    version_2 = qa_args.version_2_with_negative or spec.unanswerable
    answers = postprocess_predictions(
        examples,
        features,
        start_logits,
        end_logits,
        version_2_with_negative=version_2,
        n_best_size=qa_args.n_best_size,
        max_answer_length=qa_args.max_answer_length,
        null_score_diff_threshold=qa_args.null_score_diff_threshold,
        scores=scores,
    )
    return answers, version_2


def compute_metrics(
    predictions, features, examples, data_args, task_args=None, *, spec: QaSpec
) -> dict[str, float]:
    answers, version_2 = _qa_predictions(predictions, features, examples, task_args, spec)
    return squad_scores(answers, examples, version_2=version_2)


def predictions_to_records(
    predictions, features, examples, data_args, task_args=None, *, spec: QaSpec
) -> list[dict]:
    """One {"id", "prediction_text", "score"} row per example ("" = no answer; score = the answer's start + end
    logit, the null answer's when there is none)."""
    scores: dict = {}
    answers, _ = _qa_predictions(predictions, features, examples, task_args, spec, scores)
    return [
        {"id": qid, "prediction_text": answers[qid], "score": scores[qid]} for qid in list(examples["id"])
    ]


def _task(spec: QaSpec) -> Task:
    return Task(
        family="qa",
        name=spec.name,
        task_type=TaskType.QUESTION_ANSWERING,
        load=partial(load, spec=spec),
        preprocess=preprocess,  # its features keep example_id and offset_mapping for the metric
        compute_metrics=partial(compute_metrics, spec=spec),
        main_metric="f1",
        predictions_to_records=partial(predictions_to_records, spec=spec),
        hub_id=spec.hub_id,
        hints=TrainingHints(
            schedule=Schedule.EXPONENTIAL,
            max_seq_length=384,  # question + context + --doc_stride overlap (HF run_qa, the original's SQuAD code)
            fast_tokenizer=True,  # offset mappings locate the answers
        ),
        prediction=Prediction(read_example, key="prediction_text", raw_features=FEATURES),
        args=FamilyArgs(
            QuestionAnsweringArguments,
            overrides={"version_2_with_negative": True} if spec.unanswerable else {},
            check=check_args,
        ),
    )


TASKS: dict[str, Task] = register_specs(SPECS, _task)  # dataset name -> its registered Task
