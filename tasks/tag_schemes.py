"""Tag schemes of the tagging datasets, normalised to IOB2 (what seqeval and the heads use): IOB1 (CoNLL-2003's
original files), BILOU (SpERT's CoNLL04 JSON), entity spans; and the one check that every tag is the dataset's."""

from __future__ import annotations

from collections.abc import Sequence

from tasks.registry import DataError


def _split_tag(tag: str) -> tuple[str, str]:
    prefix, _, kind = tag.partition("-")
    return (prefix, kind) if kind else (tag, "")


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 -> IOB2: an I-X that does not continue an X chunk starts one, so it becomes B-X. Idempotent on
    IOB2.

    (CoNLL-2003's original eng.* files are IOB1, where B- only separates two adjacent chunks of one type.)
    """
    out = []
    prev = "O"
    for tag in tags:
        prefix, kind = _split_tag(tag)
        if prefix == "I":
            prev_prefix, prev_kind = _split_tag(prev)
            if prev_prefix == "O" or prev_kind != kind:
                tag = f"B-{kind}"
        out.append(tag)
        prev = tag
    return out


def bilou_to_bio(tags: Sequence[str]) -> list[str]:
    """BILOU (U-, L- as in SpERT/TablERT CoNLL04 JSON) -> BIO: U-X -> B-X, L-X -> I-X."""
    mapping = {"U": "B", "L": "I", "B": "B", "I": "I"}
    out = []
    for tag in tags:
        prefix, kind = _split_tag(tag)
        out.append(f"{mapping[prefix]}-{kind}" if kind and prefix in mapping else tag)
    return out


def spans_to_bio(n_tokens: int, entities: Sequence[dict]) -> list[str]:
    """SpERT-style entities [{"type", "start", "end" (exclusive)}] -> BIO tags."""
    tags = ["O"] * n_tokens
    for ent in entities:
        start, end, kind = int(ent["start"]), int(ent["end"]), ent["type"]
        if not 0 <= start < end <= n_tokens:
            raise ValueError(f"entity span [{start}, {end}) outside the {n_tokens} tokens")
        tags[start] = f"B-{kind}"
        for k in range(start + 1, end):
            tags[k] = f"I-{kind}"
    return tags


def convert_and_check(raw_tags: Sequence[str], convert, labels: Sequence[str], where) -> list[str]:
    """`convert(raw_tags)` (a scheme conversion, or `list`), with a DataError naming the first raw tag whose
    converted form is not one of `labels`; `where(k)` says where tag k is (e.g. "train.txt:12")."""
    tags = convert(raw_tags)
    allowed = set(labels)
    for k, tag in enumerate(tags):
        if tag not in allowed:
            what = "empty tag" if not str(raw_tags[k]).strip() else f"unknown tag {raw_tags[k]!r}"
            raise DataError(f"{where(k)}: {what}; this dataset's tags are: {', '.join(labels)}.")
    return tags
