"""SuperGLUE: boolq cb rte wic wsc copa multirc record, one registered Task each.

Data (read in tasks/superglue_data.py): the official `<Task>/{train,val,test}.jsonl` under --data_dir, explicit
--*_file, or the Hub copy `aps/super_glue`. Local and Hub data end as the same columns, the Hub's names:
  boolq   question passage idx label
  cb, rte premise hypothesis idx label
  wic     word sentence1 sentence2 idx label
  wsc     text span1_index span2_index span1_text span2_text idx label
  copa    premise choice1 choice2 question idx label
  multirc paragraph question answer idx{paragraph,question,answer} label      (one row per answer option)
  record  passage query entities answers idx{passage,query}                   (one row per query, no label)
`label` is an id into the task's label_list (the Hub's class order), -1 where the split has no labels (test).

Inputs follow the original tasks/superglue/dataset.py: pair encodings truncated longest_first at
--max_seq_length; WiC/WSC templates chosen by --template_id; COPA as 2-way multiple choice, features (2, T);
ReCoRD one feature per (query, candidate entity). Labels go to the "labels" column.

Metrics: accuracy; CB adds macro-F1; MultiRC the official F1a and EM; ReCoRD SQuAD F1/EM of the best entity.
predictions_to_records writes the leaderboard's jsonl rows (the format of jiant's SuperGLUE submission
writer): {"idx", "label"} per example, COPA's label an int; MultiRC one row per paragraph,
{"idx", "passage": {"questions": [{"idx", "answers": [{"idx", "label"}]}]}}; ReCoRD one
{"idx", "label": entity} per query.

Raw user records (Task.read_example, for predict.py): one official jsonl line without idx and label
(boolq {question, passage}; cb, rte {premise, hypothesis}; wic {word, sentence1, sentence2}; wsc {text,
target: {span1_index, span2_index, span1_text, span2_text}}; copa {premise, choice1, choice2, question};
multirc {passage: {text, questions: [{question, idx, answers: [{text, idx}]}]}}), read by the file reader
with idx = the record's position (MultiRC: the paragraph idx; its prediction rows are keyed "passage").
ReCoRD is not predicted from raw records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import datasets
import numpy as np

from tasks.classification_metrics import accuracy, f1_binary, f1_macro
from tasks.registry import Collator, Prediction, Schedule, Task, TrainingHints, register_specs
from tasks.squad_metrics import exact_match_score, f1_score, metric_max_over_ground_truths
from tasks.superglue_data import (
    BOOL_LABELS,
    BOOLQ,
    BOOLQ_USER,
    COPA,
    COPA_USER,
    HUB_ID,
    MULTIRC,
    MULTIRC_USER,
    NLI,
    NLI_USER,
    RECORD,
    WIC,
    WIC_USER,
    WSC,
    WSC_USER,
    example_reader,
    flat_reader,
    loader,
    read_multirc,
    read_record,
    read_wsc,
)
from tasks.task_type import TaskType

# ------------------------------------------------------------------------------------------------------------
# Preprocessing (batched datasets.map functions), as the original tasks/superglue/dataset.py.
# ------------------------------------------------------------------------------------------------------------


def _encode(tokenizer, data_args, first, second=None):
    max_length = min(data_args.max_seq_length, tokenizer.model_max_length)
    padding = "max_length" if data_args.pad_to_max_length else False
    return dict(tokenizer(first, second, truncation=True, max_length=max_length, padding=padding))


def _columns(first: str, second: str | None = None):
    return lambda batch, data_args: (batch[first], batch[second] if second else None)


def _wic_texts(batch, data_args):
    rows = list(zip(batch["word"], batch["sentence1"], batch["sentence2"], strict=True))
    if data_args.template_id == 0:  # one text (the original's RoBERTa scripts)
        return [f"{s1} {s2} Does {w} have the same meaning in both sentences?" for w, s1, s2 in rows], None
    return [f"{w}: {s1}" for w, s1, _ in rows], [f"{w}: {s2}" for w, _, s2 in rows]  # pair (the BERT script)


def _star_word(text: str, index: int) -> str:
    words = text.split()
    words[index] = f"*{words[index]}*"
    return " ".join(words)


def _wsc_texts(batch, data_args):
    if data_args.template_id == 0:  # "pronoun: sentence" vs the candidate noun phrase
        first = [f"{p}: {t}" for p, t in zip(batch["span2_text"], batch["text"], strict=True)]
    else:  # the pronoun marked in place: "... *he* ..."
        first = [_star_word(t, i) for t, i in zip(batch["text"], batch["span2_index"], strict=True)]
    return first, batch["span1_text"]


def _multirc_texts(batch, data_args):
    return batch["paragraph"], [f"{q} {a}" for q, a in zip(batch["question"], batch["answer"], strict=True)]


def _classification(texts: Callable):
    def preprocess(batch, tokenizer, data_args):
        encoded = _encode(tokenizer, data_args, *texts(batch, data_args))
        encoded["labels"] = list(batch["label"])
        return encoded

    return preprocess


def _preprocess_multirc(batch, tokenizer, data_args):
    encoded = _classification(_multirc_texts)(batch, tokenizer, data_args)
    # EM groups answer options by question; question idx is only unique together with its paragraph
    encoded["question_id"] = [f"{i['paragraph']}-{i['question']}" for i in batch["idx"]]
    return encoded


def _preprocess_copa(batch, tokenizer, data_args):
    """Each choice as a pair ("premise because|so", choice): every input key becomes (2, T) per example."""
    text_a = [
        f"{p} {'because' if q == 'cause' else 'so'}"
        for p, q in zip(batch["premise"], batch["question"], strict=True)
    ]
    choices = [_encode(tokenizer, data_args, text_a, batch[key]) for key in ("choice1", "choice2")]
    encoded = {
        key: [list(pair) for pair in zip(choices[0][key], choices[1][key], strict=True)] for key in choices[0]
    }
    encoded["labels"] = list(batch["label"])
    return encoded


def _preprocess_record(batch, tokenizer, data_args):
    """One feature per (query, entity): (passage, query with @placeholder := entity), label 1 iff entity is an
    answer. Keeps "question_id" (the query idx) and "entity" for the metric."""
    first, second, labels, question_ids, entities = [], [], [], [], []
    for passage, query, candidates, answers, idx in zip(
        batch["passage"], batch["query"], batch["entities"], batch["answers"], batch["idx"], strict=True
    ):
        passage = passage.replace("@highlight\n", "- ")
        for entity in candidates:
            first.append(passage)
            second.append(query.replace("@placeholder", entity))
            labels.append(int(entity in answers))
            question_ids.append(idx["query"])
            entities.append(entity)
    # the tokenizer rejects an empty batch (queries without candidates): same columns, no rows
    encoded = (
        _encode(tokenizer, data_args, first, second)
        if first
        else {k: [] for k in tokenizer.model_input_names}
    )
    return encoded | {"labels": labels, "question_id": question_ids, "entity": entities}


# ------------------------------------------------------------------------------------------------------------
# Metrics and leaderboard rows.
# ------------------------------------------------------------------------------------------------------------


def _logits(predictions) -> np.ndarray:
    return np.asarray(predictions[0] if isinstance(predictions, tuple) else predictions)


def _predicted_ids(predictions) -> np.ndarray:
    return np.argmax(_logits(predictions), axis=-1)


def _gold(features) -> np.ndarray:
    return np.asarray(features["labels"])


def _metrics_accuracy(predictions, features, examples, data_args):
    return {"accuracy": accuracy(_predicted_ids(predictions), _gold(features))}


def _metrics_cb(predictions, features, examples, data_args):
    preds, gold = _predicted_ids(predictions), _gold(features)
    scores = {"accuracy": accuracy(preds, gold), "f1": f1_macro(preds, gold)}
    return scores | {"combined_score": float(np.mean(list(scores.values())))}  # as the original's cb metric


def _metrics_multirc(predictions, features, examples, data_args):
    """The official MultiRC scores: F1a = binary F1 over all answer options; EM = fraction of questions whose
    options are all predicted right."""
    preds, gold = _predicted_ids(predictions), _gold(features)
    all_right: dict[str, bool] = {}
    for qid, ok in zip(features["question_id"], preds == gold, strict=True):
        all_right[qid] = all_right.get(qid, True) and bool(ok)
    return {"f1a": f1_binary(preds, gold), "em": float(np.mean(list(all_right.values())))}


def _record_choices(predictions, features) -> dict[int, str]:
    """Per query id, the entity with the highest class-1 probability (softmax; the first one on ties)."""
    if len(features) == 0:  # no query had a candidate (datasets then keeps no feature columns at all)
        return {}
    logits = _logits(predictions).astype(np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    prob1 = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=-1)
    best: dict[int, tuple[float, str]] = {}
    for qid, entity, p in zip(features["question_id"], features["entity"], prob1, strict=True):
        if qid not in best or p > best[qid][0]:
            best[qid] = (p, entity)
    return {qid: entity for qid, (_, entity) in best.items()}


def _metrics_record(predictions, features, examples, data_args):
    """SQuAD max-over-answers F1 / EM of each query's chosen entity, averaged over every query of `examples`
    (a query without candidates predicts "")."""
    choices = _record_choices(predictions, features)
    f1, em = [], []
    for idx, answers in zip(examples["idx"], examples["answers"], strict=True):
        prediction = choices.get(idx["query"], "")
        f1.append(metric_max_over_ground_truths(f1_score, prediction, answers))
        em.append(metric_max_over_ground_truths(exact_match_score, prediction, answers))
    return {"f1": float(np.mean(f1)), "exact_match": float(np.mean(em))}


def _check_aligned(predictions, examples):
    if len(_logits(predictions)) != len(examples):
        raise ValueError(f"{len(_logits(predictions))} predictions for {len(examples)} examples")


def _records_per_example(names: tuple[str, ...] | None):
    """{"idx", "label"} per example; `names`: the leaderboard's label strings (None: the label id, COPA)."""

    def to_records(predictions, features, examples, data_args):
        _check_aligned(predictions, examples)
        preds = _predicted_ids(predictions)
        return [
            {"idx": int(i), "label": names[p] if names else int(p)}
            for i, p in zip(examples["idx"], preds, strict=True)
        ]

    return to_records


def _records_multirc(predictions, features, examples, data_args):
    """One row per paragraph, the leaderboard's nesting: passage.questions[].answers[] with 0/1 labels."""
    _check_aligned(predictions, examples)
    grouped: dict[int, dict[int, list]] = {}
    for idx, pred in zip(examples["idx"], _predicted_ids(predictions), strict=True):
        answers = grouped.setdefault(idx["paragraph"], {}).setdefault(idx["question"], [])
        answers.append({"idx": idx["answer"], "label": int(pred)})
    return [
        {"idx": p, "passage": {"questions": [{"idx": q, "answers": a} for q, a in questions.items()]}}
        for p, questions in grouped.items()
    ]


def _records_record(predictions, features, examples, data_args):
    """One {"idx": query idx, "label": chosen entity} per query."""
    choices = _record_choices(predictions, features)
    return [{"idx": idx["query"], "label": choices.get(idx["query"], "")} for idx in examples["idx"]]


# ------------------------------------------------------------------------------------------------------------
# The datasets, one row each.
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuperGlueSpec:
    """One SuperGLUE dataset: one row of SPECS."""

    name: str  # --dataset_name (= the Hub config)
    folder: str  # the official folder under --data_dir
    label_list: tuple[str, ...] | None  # the Hub's class order; None: COPA (one score per choice)
    features: datasets.Features  # raw columns (tasks/superglue_data.py)
    read: Callable  # one json line -> raw rows (tasks/superglue_data.py)
    preprocess: Callable
    metrics: Callable
    records: Callable  # leaderboard rows
    # the layout of predict.py's user records (tasks/superglue_data.py *_USER); None: not predicted from them
    user: dict | None = None
    prediction_key: str = "label"  # the key of `records` rows that holds the prediction
    main_metric: str = "accuracy"
    task_type: TaskType = TaskType.SEQUENCE_CLASSIFICATION
    collator: str = "default"


_LOWER_BOOL = ("false", "true")  # BoolQ and WiC leaderboard labels; WSC's are "False"/"True"
NLI3 = ("entailment", "contradiction", "neutral")
NLI2 = ("entailment", "not_entailment")
_QP, _PH = ("question", "passage"), ("premise", "hypothesis")
RECORD_UNSUPPORTED = (
    "ReCoRD scores every candidate entity of a passage against its cloze queries; label the official jsonl "
    "(passage with entities, qas) with run.py --do_predict --test_file instead."
)

SPECS = (
    SuperGlueSpec("boolq", "BoolQ", BOOL_LABELS, BOOLQ, flat_reader(*_QP), _classification(_columns(*_QP)),
                  metrics=_metrics_accuracy, records=_records_per_example(_LOWER_BOOL), user=BOOLQ_USER),
    SuperGlueSpec("cb", "CB", NLI3, NLI, flat_reader(*_PH), _classification(_columns(*_PH)),
                  metrics=_metrics_cb, records=_records_per_example(NLI3), user=NLI_USER),
    SuperGlueSpec("rte", "RTE", NLI2, NLI, flat_reader(*_PH), _classification(_columns(*_PH)),
                  metrics=_metrics_accuracy, records=_records_per_example(NLI2), user=NLI_USER),
    SuperGlueSpec("wic", "WiC", BOOL_LABELS, WIC, flat_reader("word", "sentence1", "sentence2"),
                  _classification(_wic_texts), metrics=_metrics_accuracy,
                  records=_records_per_example(_LOWER_BOOL), user=WIC_USER),
    SuperGlueSpec("wsc", "WSC", BOOL_LABELS, WSC, read_wsc, _classification(_wsc_texts),
                  metrics=_metrics_accuracy, records=_records_per_example(BOOL_LABELS), user=WSC_USER),
    SuperGlueSpec("copa", "COPA", None, COPA, flat_reader("premise", "choice1", "choice2", "question"),
                  _preprocess_copa, metrics=_metrics_accuracy, records=_records_per_example(None),
                  user=COPA_USER, task_type=TaskType.MULTIPLE_CHOICE, collator="multiple_choice"),
    SuperGlueSpec("multirc", "MultiRC", BOOL_LABELS, MULTIRC, read_multirc, _preprocess_multirc,
                  metrics=_metrics_multirc, records=_records_multirc, main_metric="f1a", user=MULTIRC_USER,
                  prediction_key="passage"),
    SuperGlueSpec("record", "ReCoRD", ("0", "1"), RECORD, read_record, _preprocess_record,
                  metrics=_metrics_record, records=_records_record, main_metric="f1"),
)  # fmt: skip


def _task(spec) -> Task:
    labels = spec.label_list or ("0", "1")  # COPA's gold is the choice number 0/1 (one score per choice)
    return Task(
        family="superglue",
        name=spec.name,
        task_type=spec.task_type,
        load=loader(spec.name, spec.folder, spec.features, spec.read, labels),
        preprocess=spec.preprocess,
        compute_metrics=spec.metrics,
        main_metric=spec.main_metric,
        label_list=spec.label_list,
        predictions_to_records=spec.records,
        hub_id=HUB_ID,
        hints=TrainingHints(
            schedule=Schedule.LINEAR, collator=Collator(spec.collator)
        ),  # the original's BaseTrainer
        prediction=Prediction(
            spec.user and example_reader(spec.read, spec.user, labels),
            key=spec.prediction_key,
            unsupported=None if spec.user else RECORD_UNSUPPORTED,
            raw_features=spec.features,
        ),
    )


TASKS: dict[str, Task] = register_specs(SPECS, _task)  # dataset name -> its registered Task
