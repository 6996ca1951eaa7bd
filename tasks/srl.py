"""SRL family (--task_name srl): conll2005, conll2012. One example per predicate: BIO argument tags over the
sentence's words, with the predicate given to the model as a second segment.

Official local layout (the original's data package; first match wins):
  conll2005  {CoNLL05,conll2005,.}/conll05.{train,devel,test.wsj,test.brown}.txt
             -> splits train / validation / test_wsj / test_brown
  conll2012  {CoNLL12,conll2012,.}/conll2012.{train,devel,test}.txt -> train / validation / test
             (the original named the test split "test_wsj"; here it is "test")
  one line per predicate: `<predicate word index, 0-based> tok1 ... tokN ||| tag1 ... tagN`
  (UTF-8 with or without BOM, LF or CRLF, read through tasks.io; an empty file is a DataError).
No Hub copy exists (LDC data): --data_dir is required.

Label lists: the tag inventory of the official files, fixed at registration (a Task's label_list sizes the
model before any data is read). They are the inventories the original derived from these same files and
froze in its loading scripts (tasks/srl/datasets/conll2005.py: 106 tags, conll2012.py: 116 tags), here
sorted with "O" first. A file with a tag outside the inventory is a DataError naming the tag.

Encoding (deviation, on purpose): the tokenizer's own pair encoding (words, [predicate word]) with
truncation="only_first": BERT `[CLS] words [SEP] predicate [SEP]`, RoBERTa `<s> words </s></s> pred </s>`.
The original appended a literal "[SEP]" word, which RoBERTa splits into ordinary BPE pieces; for BERT its
input ids equal ours, and token_type_ids are set to 0 throughout so BERT sees exactly the original's input.
Labels sit on the first sub-token of the sentence's words only (-100 on specials, the predicate segment and
continuation sub-tokens), from `word_ids()`; only the sentence is truncated, so the predicate is never cut.

Metric: main "f1" is seqeval F1 over argument spans EXCLUDING the predicate's own V span, the CoNLL
srl-eval.pl convention; "f1_with_v" (+ precision/recall) is the original's number, which counted V.

Raw user records (Task.read_example, for predict.py): {"tokens": [word, ...], "index": the predicate's 0-based
word index} -> an unlabelled row (tags "O"), id = the record's position; prediction rows keyed "tags".
"""

from __future__ import annotations

import datasets

from tasks import tag_schemes, tagging
from tasks.io import find_split_files, read_lines, require_examples, uses_local_files
from tasks.registry import DataError
from tasks.tagging import TaggingSpec

TAG_COLUMN = "tags"
EXTRA_FEATURES = {"index": datasets.Value("int32")}  # the predicate's word index, between tokens and tags


def _inventory(b_types: str, i_types: str) -> tuple[str, ...]:
    tags = [f"B-{t}" for t in b_types.split()] + [f"I-{t}" for t in i_types.split()]
    return ("O", *sorted(tags))


# CoNLL-2005 (PropBank A0..A5, AM-*, continuation C-* and reference R-* arguments): 1 + 54 + 51 = 106.
_C05 = """
    A0 A1 A2 A3 A4 A5 AA AM AM-ADV AM-CAU AM-DIR AM-DIS AM-EXT AM-LOC AM-MNR AM-MOD AM-NEG AM-PNC AM-PRD
    AM-REC AM-TM AM-TMP C-A0 C-A1 C-A2 C-A3 C-A4 C-A5 C-AM-ADV C-AM-CAU C-AM-DIR C-AM-DIS C-AM-EXT
    C-AM-LOC C-AM-MNR C-AM-PNC C-AM-TMP C-V R-A0 R-A1 R-A2 R-A3 R-A4 R-AM-ADV R-AM-DIR R-AM-EXT R-AM-LOC
    R-AM-MNR R-AM-PNC R-AM-TMP V
"""
CONLL2005_LABELS = _inventory(_C05 + " C-AM-NEG R-AA R-AM-CAU", _C05)
# CoNLL-2012 (OntoNotes PropBank ARG0..ARG5, ARGM-*, C-*, R-*; single-word predicates): 1 + 60 + 55 = 116.
_C12 = """
    ARG0 ARG1 ARG2 ARG3 ARG4 ARG5 ARGA ARGM-ADJ ARGM-ADV ARGM-CAU ARGM-COM ARGM-DIR ARGM-DIS ARGM-DSP
    ARGM-EXT ARGM-GOL ARGM-LOC ARGM-MNR ARGM-MOD ARGM-NEG ARGM-PNC ARGM-PRD ARGM-PRP ARGM-REC ARGM-TMP
    C-ARG0 C-ARG1 C-ARG2 C-ARG3 C-ARG4 C-ARGM-ADV C-ARGM-CAU C-ARGM-DSP C-ARGM-EXT C-ARGM-LOC C-ARGM-MNR
    C-ARGM-MOD C-ARGM-PRP C-ARGM-TMP R-ARG0 R-ARG1 R-ARG2 R-ARG3 R-ARG4 R-ARGM-ADV R-ARGM-CAU R-ARGM-COM
    R-ARGM-DIR R-ARGM-EXT R-ARGM-GOL R-ARGM-LOC R-ARGM-MNR R-ARGM-PRD R-ARGM-PRP R-ARGM-TMP
"""
CONLL2012_LABELS = _inventory(_C12 + " ARGM-LVB ARGM-PRR ARGM-PRX R-ARG5 V", _C12)

# One row per dataset: name, folders, split files, labels (reader: read_srl_file; no Hub copy), test splits.
SPECS = (
    TaggingSpec("conll2005", ("CoNLL05", "conll2005", ""),
                {"train": ("conll05.train.txt",), "validation": ("conll05.devel.txt",),
                 "test_wsj": ("conll05.test.wsj.txt",), "test_brown": ("conll05.test.brown.txt",)},
                CONLL2005_LABELS, test_splits=("test_wsj", "test_brown")),
    TaggingSpec("conll2012", ("CoNLL12", "conll2012", ""),
                {"train": ("conll2012.train.txt",), "validation": ("conll2012.devel.txt",),
                 "test": ("conll2012.test.txt",)},
                CONLL2012_LABELS),
)  # fmt: skip


def read_srl_file(path: str, labels) -> list[dict]:
    """`<index> tokens ||| tags` lines -> rows {"index", "tokens", "tags"}; blank lines are skipped, a file
    without any line is a DataError."""
    rows = []
    for lineno, line in read_lines(path):  # BOM dropped, CRLF accepted, bad bytes named by file:line
        if not line.strip():
            continue
        left, sep, right = line.partition("|||")
        parts, tags = left.split(), right.split()
        expected = "expected '<predicate index> tok1 ... tokN ||| tag1 ... tagN'"
        if not sep or len(parts) < 2:
            raise DataError(f"{path}:{lineno}: {expected}, got {line.strip()[:80]!r}.")
        try:
            index = int(parts[0])
        except ValueError:
            raise DataError(
                f"{path}:{lineno}: predicate index {parts[0]!r} is not an integer; {expected}."
            ) from None
        tokens = parts[1:]
        if len(tags) != len(tokens):
            raise DataError(f"{path}:{lineno}: {len(tokens)} tokens but {len(tags)} tags.")
        if not 0 <= index < len(tokens):
            raise DataError(f"{path}:{lineno}: predicate index {index} outside the {len(tokens)} tokens.")
        tag_schemes.convert_and_check(tags, list, labels, lambda k, n=lineno: f"{path}:{n} (token {k})")
        rows.append({"id": str(len(rows)), "index": index, "tokens": tokens, TAG_COLUMN: tags})
    return require_examples(rows, path, "'<predicate index> tok1 ... tokN ||| tag1 ... tagN' lines")


def load(data_args, splits, *, spec: TaggingSpec) -> datasets.DatasetDict:
    name, subdirs, layout, labels = spec.name, spec.subdirs, spec.layout, spec.label_list
    if not uses_local_files(data_args):
        raise DataError(
            f"{name} (LDC-licensed) has no Hugging Face Hub copy: pass --data_dir holding "
            f"{subdirs[0]}/{layout['train'][0]} etc. (the original's data package; README 'Data layouts')."
        )
    unknown = [s for s in splits if s not in layout]
    if unknown:
        raise DataError(f"{name} has no split {unknown[0]!r}; its splits are: {', '.join(layout)}.")
    paths = find_split_files(data_args, splits, subdirs, layout)
    return datasets.DatasetDict(
        {
            split: tagging.tagging_dataset(read_srl_file(path, labels), TAG_COLUMN, EXTRA_FEATURES)
            for split, path in paths.items()
        }
    )


def without_v(sentences: list[list[str]]) -> list[list[str]]:
    """Predicate spans (type "V") -> "O", so they are neither gold nor predicted chunks."""
    return [["O" if tag[2:] == "V" else tag for tag in tags] for tags in sentences]


def compute_metrics(predictions, features, examples, data_args, *, label_list) -> dict[str, float]:
    """precision / recall / f1 / accuracy without the V span (main "f1"); *_with_v as the original counted."""
    gold, pred = tagging.gold_and_predicted(predictions, features, examples, label_list, TAG_COLUMN)
    scores = tagging.seqeval_scores(without_v(gold), without_v(pred))
    with_v = tagging.seqeval_scores(gold, pred)
    scores.update({f"{key}_with_v": with_v[key] for key in ("precision", "recall", "f1")})
    return scores


TASKS = tagging.register_family(
    "srl",
    SPECS,
    load=load,
    compute_metrics=compute_metrics,
    tag_column=TAG_COLUMN,
    pair_column="index",
    extra_features=EXTRA_FEATURES,
)
