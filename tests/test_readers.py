"""One text reader for every family (tasks/io.py read_lines): fault injection per reader kind.

Each kind is one family's local file format, written clean by tests/fixtures.py and then broken on purpose:
a byte that is not UTF-8, a BOM, CRLF line ends, an empty split file, a nan/inf/empty STS-B score, an empty
label. Errors must be a DataError naming the exact file:line (reliability review F4, F5, F6, W5, W6); a BOM or
CRLF copy must load exactly the examples of the clean files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

import fixtures
from arguments import DataTrainingArguments
from tasks import get_task
from tasks.io import read_lines
from tasks.registry import DataError

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Kind:
    """One reader: how to write clean files under a root, which task reads them, and the train file."""

    family: str
    dataset: str
    write: object  # root -> None (every split's file)
    train: str  # the train split's file, relative to the root
    splits: tuple[str, ...] = ("train", "validation", "test")

    def load(self, root, splits=None):
        args = DataTrainingArguments(task_name=self.family, dataset_name=self.dataset, data_dir=str(root))
        loaded = get_task(self.family, self.dataset).load(args, list(splits or self.splits))
        return {split: ds.to_list() for split, ds in loaded.items()}


def _squad(root):
    fixtures.squad(str(root), indent=1)  # one value per line, so a line number means something


KINDS = {
    "jsonl (SuperGLUE)": Kind("superglue", "rte", lambda r: fixtures.superglue_rte(str(r)), "RTE/train.jsonl"),
    "tsv (GLUE)": Kind("glue", "stsb", lambda r: fixtures.glue_stsb(str(r)), "STS-B/train.tsv",
                       ("train", "validation")),
    "CoNLL columns (NER)": Kind("ner", "conll2003", lambda r: fixtures.conll2003(str(r)), "train.txt"),
    "tab columns (OntoNotes)": Kind("ner", "ontonotes", lambda r: fixtures.ontonotes(str(r)), "train.sd.conllx"),
    "SpERT json (CoNLL04)": Kind("ner", "conll2004", lambda r: fixtures.conll04_json(str(r)),
                                "conll04_train.json"),
    "SRL lines": Kind("srl", "conll2005", lambda r: fixtures.conll2005(str(r)), "conll05.train.txt",
                      ("train", "validation", "test_wsj", "test_brown")),
    "SQuAD json": Kind("qa", "squad", _squad, "train-v1.1.json", ("train", "validation")),
}  # fmt: skip
kinds = pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))


def rewrite(path, change):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(change(data))


def all_files(root):
    return [os.path.join(d, name) for d, _, names in os.walk(root) for name in names]


def message(excinfo) -> str:
    return str(excinfo.value)


# ------------------------------------------------------------------------------------------------------------
# read_lines itself


def test_read_lines_drops_bom_and_line_ends_only(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(BOM + "a b\r\n\r\n\ufeffc\u2028d\n".encode() + b"last")  # a later BOM is text
    assert list(read_lines(str(path))) == [(1, "a b"), (2, ""), (3, "\ufeffc\u2028d"), (4, "last")]


def test_read_lines_bad_byte_gives_file_line_byte_and_character_column(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"ok\n" + "Café ".encode() + b"\xff rest\n")
    with pytest.raises(DataError) as err:
        list(read_lines(str(path)))
    assert message(err) == f"{path}:2: not valid UTF-8 (byte 0xff at column 6)."
    path.write_bytes(BOM + b"\xe9t\xe9\n")  # the BOM is not counted as a column
    with pytest.raises(DataError) as err:
        list(read_lines(str(path)))
    assert message(err) == f"{path}:1: not valid UTF-8 (byte 0xe9 at column 1)."


# ------------------------------------------------------------------------------------------------------------
# Every reader kind


@kinds
def test_non_utf8_byte_is_a_data_error_with_file_and_line(kind, tmp_path):
    kind.write(tmp_path)
    path = os.path.join(str(tmp_path), kind.train)

    def break_line_3(data):
        lines = data.split(b"\n")
        lines[2] = lines[2][:2] + b"\xe9" + lines[2][2:]  # after two ASCII characters: column 3
        return b"\n".join(lines)

    rewrite(path, break_line_3)
    with pytest.raises(DataError) as err:
        kind.load(tmp_path, ["train"])
    assert message(err) == f"{path}:3: not valid UTF-8 (byte 0xe9 at column 3)."


@kinds
@pytest.mark.parametrize(
    "change",
    [lambda b: BOM + b, lambda b: b.replace(b"\n", b"\r\n"), lambda b: BOM + b.replace(b"\n", b"\r\n")],
    ids=["BOM", "CRLF", "BOM+CRLF"],
)
def test_bom_and_crlf_give_exactly_the_clean_examples(kind, change, tmp_path):
    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    kind.write(clean)
    kind.write(dirty)
    for path in all_files(dirty):
        rewrite(path, change)
    expected = kind.load(clean)
    assert all(len(rows) > 0 for rows in expected.values())
    assert kind.load(dirty) == expected


@kinds
@pytest.mark.parametrize(
    "content", [b"", BOM, BOM + b"\r\n \r\n\n"], ids=["empty", "BOM only", "blank lines"]
)
def test_empty_split_file_is_an_error_at_load_naming_the_file(kind, content, tmp_path):
    kind.write(tmp_path)
    path = os.path.join(str(tmp_path), kind.train)
    rewrite(path, lambda _: content)
    with pytest.raises(DataError) as err:
        kind.load(tmp_path, ["train"])
    assert message(err).startswith(f"{path}: ")
    assert "no examples" in message(err) or "empty file" in message(err)


def test_empty_conll_validation_file_fails_at_load_not_after_an_epoch(tmp_path):
    """Review F6 / row 2o: `: > valid.txt` used to train a whole epoch first."""
    kind = KINDS["CoNLL columns (NER)"]
    kind.write(tmp_path)
    path = os.path.join(str(tmp_path), "valid.txt")
    for content in (b"", b"\n\n", b"-DOCSTART- -X- -X- O\n\n"):  # no sentence at all
        rewrite(path, lambda _, c=content: c)
        with pytest.raises(DataError) as err:
            kind.load(tmp_path, ["train", "validation"])
        assert message(err) == (
            f"{path}: no examples (expected conll2003 sentences in the official layout; "
            "see README 'Data layouts')."
        )


def test_empty_jsonl_and_tsv_messages(tmp_path):
    superglue, glue = KINDS["jsonl (SuperGLUE)"], KINDS["tsv (GLUE)"]
    superglue.write(tmp_path)
    glue.write(tmp_path)
    jsonl = os.path.join(str(tmp_path), "RTE", "val.jsonl")
    rewrite(jsonl, lambda _: b"\r\n\r\n")
    with pytest.raises(DataError) as err:
        superglue.load(tmp_path, ["validation"])
    assert message(err) == f"{jsonl}: no examples (expected the official RTE/val.jsonl jsonl)."
    tsv = os.path.join(str(tmp_path), "STS-B", "dev.tsv")
    rewrite(tsv, lambda b: b.split(b"\n")[0] + b"\n")  # the header only
    with pytest.raises(DataError) as err:
        glue.load(tmp_path, ["validation"])
    assert message(err) == f"{tsv}: no examples (expected the official GLUE STS-B TSV)."


def test_bom_conll_keeps_docstart_out_of_the_sentences(tmp_path):
    """Review F5 / row 2m: `\\ufeff-DOCSTART-` used to become a one-token sentence."""
    kind = KINDS["CoNLL columns (NER)"]
    kind.write(tmp_path)
    rewrite(os.path.join(str(tmp_path), "valid.txt"), lambda b: BOM + b)
    rows = kind.load(tmp_path, ["validation"])["validation"]
    assert len(rows) == 12 and rows[0]["tokens"][0] == "EU"


# ------------------------------------------------------------------------------------------------------------
# Labels


@pytest.mark.parametrize(
    "score, what",
    [
        ("nan", "score 'nan' is not a finite number"),
        ("NaN", "score 'NaN' is not a finite number"),
        ("inf", "score 'inf' is not a finite number"),
        ("-Infinity", "score '-Infinity' is not a finite number"),
        ("", "empty score"),
        (" ", "empty score"),
        ("high", "score 'high' is not a number"),
    ],
)
def test_stsb_score_must_be_a_finite_number(score, what, tmp_path):
    """Review W6 / row 2q: a nan score used to pass loading and stop training with a nan loss."""
    kind = KINDS["tsv (GLUE)"]
    kind.write(tmp_path)
    path = os.path.join(str(tmp_path), kind.train)

    def set_score(data):
        lines = data.split(b"\n")
        lines[5] = lines[5].rsplit(b"\t", 1)[0] + b"\t" + score.encode()  # line 6
        return b"\n".join(lines)

    rewrite(path, set_score)
    with pytest.raises(DataError) as err:
        kind.load(tmp_path, ["train"])
    assert message(err) == f"{path}:6: {what}."


def test_empty_glue_classification_label(tmp_path):
    path = tmp_path / "RTE" / "dev.tsv"
    path.parent.mkdir()
    path.write_bytes(b"index\tsentence1\tsentence2\tlabel\r\n0\tA.\tB.\tentailment\r\n1\tC.\tD.\t\r\n")
    args = DataTrainingArguments(task_name="glue", dataset_name="rte", data_dir=str(tmp_path))
    with pytest.raises(DataError) as err:
        get_task("glue", "rte").load(args, ["validation"])
    assert message(err) == f"{path}:3: empty label; expected one of entailment, not_entailment."
    cola = tmp_path / "CoLA" / "dev.tsv"  # header-less, numeric labels
    cola.parent.mkdir()
    cola.write_bytes(b"gj04\t1\t\tThe sailors rode the breeze.\ngj04\t\t*\tThe more books.\n")
    args = DataTrainingArguments(task_name="glue", dataset_name="cola", data_dir=str(tmp_path))
    with pytest.raises(DataError) as err:
        get_task("glue", "cola").load(args, ["validation"])
    assert message(err) == f"{cola}:2: empty label; expected one of 0, 1."


@pytest.mark.parametrize("label", ["", None], ids=["empty string", "null"])
def test_empty_superglue_label(label, tmp_path):
    kind = KINDS["jsonl (SuperGLUE)"]
    kind.write(tmp_path)
    path = os.path.join(str(tmp_path), "RTE", "val.jsonl")

    def empty_label_on_line_2(data):
        lines = data.split(b"\n")
        row = json.loads(lines[1])
        row["label"] = label
        lines[1] = json.dumps(row).encode()
        return b"\n".join(lines)

    rewrite(path, empty_label_on_line_2)
    with pytest.raises(DataError) as err:
        kind.load(tmp_path, ["validation"])
    assert message(err) == f"{path}:2: empty label; expected one of entailment, not_entailment."


def test_empty_ontonotes_tag(tmp_path):
    kind = KINDS["tab columns (OntoNotes)"]
    kind.write(tmp_path)
    path = os.path.join(str(tmp_path), kind.train)
    rewrite(path, lambda b: b.replace(b"VBD\t_\t_\tO", b"VBD\t_\t_\t", 1))  # line 2
    with pytest.raises(DataError) as err:
        kind.load(tmp_path, ["train"])
    assert message(err).startswith(f"{path}:2: empty tag; this dataset's tags are: B-CARDINAL, ")
