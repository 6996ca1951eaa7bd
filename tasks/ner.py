"""NER family (--task_name ner): conll2003, conll2004, ontonotes (and your own tags: custom, tasks/custom.py).
Word-level BIO tagging scored by seqeval.

Raw rows: {"id", "tokens": [word, ...], "ner_tags": [IOB2 tag name, ...]}; tag names are mapped to ids through
the Task's label_list at preprocessing. Official local layouts under --data_dir (first match wins):
  conll2003  {CoNLL03,conll2003,.}/{train,valid,test}.txt (or the release's eng.train/testa/testb):
             `token POS chunk NER`, space-separated; `-DOCSTART-` and blank lines split sentences.
             IOB1 or IOB2 tags, both normalised to IOB2 (B- at every entity start).
  conll2004  {CoNLL04,conll2004,.}/{train,dev,test}.txt: space-separated, token first, BIO tag last (the
             original's files); or SpERT-style conll04_{train,dev,test}.json: a list of {"tokens", "tags"}
             with BILOU tags (TablERT variant) or {"tokens", "entities": [{"type", "start", "end"}]} (SpERT
             original), converted to BIO.
  ontonotes  {ontoNotes,ontonotes,.}/{train,dev,test}.sd.conllx: TAB-separated, token = column 1, tag = last.
Every local file is read through tasks.io (UTF-8 with or without BOM, LF or CRLF; a bad byte or an empty
split is a DataError naming the file). Without --data_dir/--*_file: conll2003 and ontonotes come from the Hub's Parquet export of eriktks/conll2003
and tner/ontonotes5 (their `main` branches only hold loading scripts); conll2004 has no Hub copy.

Preprocessing (deviation, on purpose): labels come from the fast tokenizer's `word_ids()` of the very
encoding the model sees, and --max_seq_length is honoured. The original (tasks/ner/dataset.py) ignored
max_seq_length (truncating at the model max, 512) and rebuilt word ids by re-encoding each word, assuming one
special token at each end, so its labels could drift from the input under truncation.
Metric: seqeval default mode on the first sub-token of each word; words cut by truncation count as predicted
"O" against the full gold sentence.
Raw user records (Task.read_example, for predict.py): {"tokens": [word, ...]} -> an unlabelled row (tags "O"),
id = the record's position; prediction rows keyed "tags" (tasks/tagging.py read_example).
"""

from __future__ import annotations

from functools import partial

import datasets

from tasks import tag_schemes, tagging
from tasks.io import find_split_files, load_from_hub, read_json, require_examples, uses_local_files
from tasks.registry import DataError
from tasks.tagging import TaggingSpec

TAG_COLUMN = "ner_tags"

# HF conll2003 order (= the original's ClassLabel names).
CONLL2003_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
# The original's tasks/ner/datasets/conll2004.py order.
CONLL2004_LABELS = ("O", "B-Loc", "B-Peop", "B-Org", "B-Other", "I-Loc", "I-Peop", "I-Org", "I-Other")
ONTONOTES_TYPES = (
    "CARDINAL DATE EVENT FAC GPE LANGUAGE LAW LOC MONEY NORP ORDINAL ORG PERCENT PERSON PRODUCT QUANTITY "
    "TIME WORK_OF_ART"
).split()
# The original's order: every B-, every I-, then O (37 labels).
ONTONOTES_LABELS = (
    tuple(f"B-{t}" for t in ONTONOTES_TYPES) + tuple(f"I-{t}" for t in ONTONOTES_TYPES) + ("O",)
)
# tner/ontonotes5 stores tag ids in its own order (its dataset/label.json).
TNER_ONTONOTES_IDS = """
    O B-CARDINAL B-DATE I-DATE B-PERSON I-PERSON B-NORP B-GPE I-GPE B-LAW I-LAW B-ORG I-ORG B-PERCENT
    I-PERCENT B-ORDINAL B-MONEY I-MONEY B-WORK_OF_ART I-WORK_OF_ART B-FAC B-TIME I-CARDINAL B-LOC
    B-QUANTITY I-QUANTITY I-NORP I-LOC B-PRODUCT I-TIME B-EVENT I-EVENT I-FAC B-LANGUAGE I-PRODUCT
    I-ORDINAL I-LANGUAGE
""".split()

HUB_ID_ORDER = {"conll2003": CONLL2003_LABELS, "ontonotes": TNER_ONTONOTES_IDS}  # when the ids carry no names


# ------------------------------------------------------------------------------------------------------------
# Readers: path -> list of {"tokens", "ner_tags"}


def _read_columns(path: str, labels, *, token_col: int, sep: str | None, min_columns: int) -> list[dict]:
    rows = []
    for sent in tagging.read_column_file(path, token_col, -1, sep=sep, min_columns=min_columns):
        tags = tag_schemes.convert_and_check(
            sent.tags, tag_schemes.to_iob2, labels, lambda k, s=sent: f"{path}:{s.lineno + k}"
        )
        rows.append({"tokens": sent.tokens, TAG_COLUMN: tags})
    return rows


def _read_spert_json(path: str, labels) -> list[dict]:
    """SpERT/TablERT CoNLL04 JSON (one list of sentences) -> BIO rows."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(
            f"{path}: expected a JSON list of sentences (SpERT conll04_*.json), got {type(data).__name__}."
        )
    rows = []
    for k, item in enumerate(data):
        where = f"{path}: sentence {k}"
        if not isinstance(item, dict) or "tokens" not in item or not ("tags" in item or "entities" in item):
            raise DataError(f"{where}: expected an object with 'tokens' and 'tags' (BILOU) or 'entities'.")
        tokens = list(item["tokens"])
        if "tags" in item:
            tags = tag_schemes.convert_and_check(
                list(item["tags"]), tag_schemes.bilou_to_bio, labels, lambda j, w=where: f"{w}, token {j}"
            )
        else:
            try:
                tags = tag_schemes.spans_to_bio(len(tokens), item["entities"])
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(
                    f"{where}: bad entity ({err}); expected {{'type', 'start', 'end'}}."
                ) from None
            tag_schemes.convert_and_check(tags, list, labels, lambda j, w=where: f"{w}, token {j}")
        if len(tags) != len(tokens):
            raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} tags.")
        rows.append({"tokens": tokens, TAG_COLUMN: tags})
    return rows


def _read_conll2004(path: str, labels) -> list[dict]:
    if path.endswith(".json"):
        return _read_spert_json(path, labels)
    return _read_columns(path, labels, token_col=0, sep=None, min_columns=2)


# One row per dataset: name, folders, split files (first match wins), reader, labels, Hub copy.
SPECS = (
    TaggingSpec("conll2003", ("CoNLL03", "conll2003", ""),
                {"train": ("train.txt", "eng.train"), "validation": ("valid.txt", "eng.testa"),
                 "test": ("test.txt", "eng.testb")},
                CONLL2003_LABELS, partial(_read_columns, token_col=0, sep=None, min_columns=4),
                hub_id="eriktks/conll2003"),
    TaggingSpec("conll2004", ("CoNLL04", "conll2004", ""),
                {"train": ("train.txt", "conll04_train.json"), "validation": ("dev.txt", "conll04_dev.json"),
                 "test": ("test.txt", "conll04_test.json")},
                CONLL2004_LABELS, _read_conll2004),
    TaggingSpec("ontonotes", ("ontoNotes", "ontonotes", ""),
                {"train": ("train.sd.conllx",), "validation": ("dev.sd.conllx",), "test": ("test.sd.conllx",)},
                ONTONOTES_LABELS, partial(_read_columns, token_col=1, sep="\t", min_columns=3),
                hub_id="tner/ontonotes5"),
)  # fmt: skip


# ------------------------------------------------------------------------------------------------------------
# Task callables


def _from_hub(spec: TaggingSpec, splits) -> datasets.DatasetDict:
    loaded = load_from_hub(spec.hub_id, None, splits, revision="refs/convert/parquet")
    out = {}
    for split, ds in loaded.items():
        tag_col = "ner_tags" if "ner_tags" in ds.column_names else "tags"
        feature = getattr(ds.features[tag_col], "feature", None)
        # eriktks/conll2003 has ClassLabel ids (CONLL2003_LABELS order); tner has bare ints in its own order
        names = feature.names if isinstance(feature, datasets.ClassLabel) else HUB_ID_ORDER[spec.name]
        rows = [
            {
                "id": str(row.get("id", k)),
                "tokens": row["tokens"],
                TAG_COLUMN: tag_schemes.to_iob2([names[t] for t in row[tag_col]]),
            }
            for k, row in enumerate(ds)
        ]
        out[split] = tagging.tagging_dataset(rows, TAG_COLUMN)
    return datasets.DatasetDict(out)


def load(data_args, splits, *, spec: TaggingSpec) -> datasets.DatasetDict:
    name, subdirs, layout = spec.name, spec.subdirs, spec.layout
    if not uses_local_files(data_args):
        if spec.hub_id is None:
            raise DataError(
                f"{name} has no Hugging Face Hub copy: download it and pass --data_dir (expected "
                f"{'/'.join(subdirs[:1])}/{layout['train'][0]} etc.; see README 'Data layouts')."
            )
        return _from_hub(spec, splits)
    paths = find_split_files(data_args, splits, subdirs, layout)
    out = {}
    for split, path in paths.items():
        rows = spec.read(path, spec.label_list)
        require_examples(rows, path, f"{name} sentences in the official layout; see README 'Data layouts'")
        for k, row in enumerate(rows):
            row["id"] = str(k)
        out[split] = tagging.tagging_dataset(rows, TAG_COLUMN)
    return datasets.DatasetDict(out)


def compute_metrics(predictions, features, examples, data_args, *, label_list) -> dict[str, float]:
    """seqeval precision / recall / f1 / accuracy (as the original); main metric "f1"."""
    gold, pred = tagging.gold_and_predicted(predictions, features, examples, label_list, TAG_COLUMN)
    return tagging.seqeval_scores(gold, pred)


TASKS = tagging.register_family(
    "ner", SPECS, load=load, compute_metrics=compute_metrics, tag_column=TAG_COLUMN
)
