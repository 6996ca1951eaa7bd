"""predict.py end to end: three adapters trained by run.py on one tiny backbone (RTE with a prefix, CoNLL-2003 with a
prompt, SQuAD with a prefix and several windows per example), one input file that mixes them, and every output line
equal to what `run.py --do_predict` wrote for that adapter on the same example. Then the one-line errors."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

import fixtures
import predict
import run
from model.checkpoint import META_KEY
from model.config import PTuningError
from tasks import DataError
from tiny import save_tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMMON = ["--do_train", "--do_predict", "--num_train_epochs", "2", "--per_device_train_batch_size", "4",
          "--learning_rate", "5e-2", "--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none",
          "--disable_tqdm", "true", "--seed", "3", "--max_seq_length", "48"]  # fmt: skip


def train(model_dir, out, task, dataset, data_dir, *flags):
    argv = ["--model_name_or_path", model_dir, "--task_name", task, "--dataset_name", dataset, "--data_dir",
            data_dir, "--output_dir", out, *COMMON, *flags]  # fmt: skip
    run.main(argv)
    return os.path.join(out, "best_model") if os.path.isdir(os.path.join(out, "best_model")) else out


def predict_once(model_dir, checkpoint, path, out):
    return predict.main(["--model_name_or_path", model_dir, "--ptuning_checkpoint", checkpoint,
                         "--input", path, "--output", out])  # fmt: skip


def read_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    rte = fixtures.superglue_rte(str(root / "sg"))
    ner = fixtures.conll2003(str(root / "conll"))
    squad = fixtures.squad(str(root / "squad"))
    squad_test = os.path.join(squad, "dev-v1.1.json")
    runs = {
        "rte": train(tiny_bert, str(root / "rte"), "superglue", "rte", rte, "--prefix", "--pre_seq_len", "4"),
        "ner": train(tiny_bert, str(root / "ner"), "ner", "conll2003", ner, "--prompt", "--pre_seq_len", "3"),
        "qa": train(tiny_bert, str(root / "qa"), "qa", "squad", squad, "--prefix", "--pre_seq_len", "2",
                    "--doc_stride", "16", "--max_seq_length", "32", "--test_file", squad_test),
    }  # fmt: skip
    # the mixed input: every test example of the three runs, interleaved
    sg = [{"adapter": "rte", **r} for r in read_lines(os.path.join(rte, "RTE", "test.jsonl"))]
    conll = [
        {"adapter": "ner", "tokens": r["tokens"]}
        for r in read_lines(str(root / "ner" / "predict_results_test.jsonl"))
    ]
    with open(squad_test) as f:
        payload = json.load(f)
    paragraph = payload["data"][0]["paragraphs"][0]
    qa = [
        {"adapter": "qa", "question": q["question"], "context": paragraph["context"]}
        for q in paragraph["qas"]
    ]
    mixed = [x for group in zip(conll, qa, sg, conll[::-1], strict=False) for x in group]
    mixed += sg[len(mixed) // 4 :] + qa[len(mixed) // 4 :]
    path = str(root / "in.jsonl")
    with open(path, "w") as f:
        f.writelines(json.dumps(x) + "\n" for x in mixed)
    return tiny_bert, runs, path, root


def test_each_mixed_line_equals_run_py_do_predict(trained):
    model_dir, runs, path, root = trained
    out = str(root / "out.jsonl")
    flags = [f"--ptuning_checkpoint={n}={p}" for n, p in runs.items()]
    predict.main(
        ["--model_name_or_path", model_dir, *flags, "--input", path, "--output", out, "--batch_size", "4"]
    )
    inputs, outputs = read_lines(path), read_lines(out)
    assert len(outputs) == len(inputs)
    expected = {
        "rte": {r["idx"]: r["label"] for r in read_lines(str(root / "rte" / "predict_results_test.jsonl"))},
        "ner": {
            " ".join(r["tokens"]): r["tags"]
            for r in read_lines(str(root / "ner" / "predict_results_test.jsonl"))
        },
        "qa": read_lines(str(root / "qa" / "predict_results_test.jsonl")),
    }
    qa_by_question = {}
    for row, q in zip(
        expected["qa"],
        json.load(open(os.path.join(root, "squad", "dev-v1.1.json")))["data"][0]["paragraphs"][0]["qas"],
        strict=True,
    ):
        qa_by_question[q["question"]] = row  # several questions share a text: same prediction, same score
    for given, got in zip(inputs, outputs, strict=True):
        assert {k: got[k] for k in given} == given  # the input fields come back unchanged, in input order
        if given["adapter"] == "rte":
            assert got["prediction"] == expected["rte"][given["idx"]]
            assert set(got["scores"]) == {"entailment", "not_entailment"}
            assert sum(got["scores"].values()) == pytest.approx(1.0, abs=1e-5)
            assert max(got["scores"], key=got["scores"].get) == got["prediction"]
        elif given["adapter"] == "ner":
            assert got["prediction"] == expected["ner"][" ".join(given["tokens"])]
            assert len(got["scores"]) == len(given["tokens"]) and all(0 < p <= 1 for p in got["scores"])
        else:
            row = qa_by_question[given["question"]]
            assert got["prediction"] == row["prediction_text"]
            assert got["scores"] == pytest.approx(row["score"], abs=1e-4)
    assert {x["adapter"] for x in inputs} == {"rte", "ner", "qa"}


def test_one_checkpoint_needs_no_adapter_field(trained, tmp_path):
    model_dir, runs, _, root = trained
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"premise": "A cat sat.", "hypothesis": "An animal sat."}) + "\n")
    results = predict.main(["--model_name_or_path", model_dir, "--ptuning_checkpoint", runs["rte"],
                            "--input", str(path), "--output", str(tmp_path / "o.jsonl")])  # fmt: skip
    assert results[0]["prediction"] in ("entailment", "not_entailment")
    assert read_lines(tmp_path / "o.jsonl")[0]["adapter"] == "rte"  # a bare PATH: named after its folder
    run_folder = tmp_path / "runs" / "rte-minilm"
    os.makedirs(run_folder)
    os.symlink(runs["rte"], run_folder / "best_model")  # a run folder stands for its best_model/
    again = predict.main(["--model_name_or_path", model_dir, "--ptuning_checkpoint", str(run_folder),
                          "--input", str(path), "--output", str(tmp_path / "o2.jsonl")])  # fmt: skip
    assert again == results and read_lines(tmp_path / "o2.jsonl")[0]["adapter"] == "rte-minilm"


@pytest.mark.parametrize(
    "line,message",
    [
        (
            '{"adapter": "cb", "premise": "a", "hypothesis": "b"}',
            "in.jsonl:2: unknown adapter 'cb'; loaded: rte, ner",
        ),
        ('{"adapter": "rte", "premise": "a"}', "in.jsonl:2: missing field 'hypothesis'"),
        ("premise: a", "in.jsonl:2: not valid JSON"),
        (
            '{"premise": "a", "hypothesis": "b"}',
            'in.jsonl:2: no "adapter" field, and 2 checkpoints are loaded',
        ),
    ],
)
def test_bad_lines_are_one_clear_error(trained, tmp_path, line, message):
    model_dir, runs, _, _ = trained
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"adapter": "rte", "premise": "a", "hypothesis": "b"}) + "\n" + line + "\n")
    argv = ["--model_name_or_path", model_dir, "--ptuning_checkpoint", f"rte={runs['rte']}",
            "--ptuning_checkpoint", f"ner={runs['ner']}", "--input", str(path), "--output", str(tmp_path / "o.jsonl")]  # fmt: skip
    with pytest.raises((DataError, PTuningError)) as err:
        predict.main(argv)
    assert message in str(err.value)
    assert not (tmp_path / "o.jsonl").exists()


def test_another_backbone_an_old_checkpoint_and_an_existing_output_are_refused(trained, tmp_path):
    model_dir, runs, _, _ = trained
    path = str(tmp_path / "in.jsonl")  # lines of this one adapter: the input is read before any checkpoint
    open(path, "w").write(json.dumps({"premise": "A cat sat.", "hypothesis": "An animal sat."}) + "\n")
    roberta = save_tiny_model(str(tmp_path / "roberta"), "roberta")
    out = str(tmp_path / "o.jsonl")
    with pytest.raises(
        PTuningError, match="trained on another backbone or size .*model_type 'bert' vs 'roberta'"
    ):
        predict_once(roberta, runs["rte"], path, out)
    # a checkpoint saved before the task record existed
    old = tmp_path / "old" / "best_model"
    old.mkdir(parents=True)
    tensors = load_file(os.path.join(runs["rte"], "model.safetensors"))
    record = json.loads(bytes(tensors[META_KEY].tolist()).decode())
    record.pop("task"), record.pop("method_config")
    tensors[META_KEY] = torch.tensor(list(json.dumps(record).encode()), dtype=torch.uint8)
    save_file(tensors, str(old / "model.safetensors"))
    with pytest.raises(PTuningError, match="does not record task and method_config .*Retrain it"):
        predict_once(model_dir, f"x={old}", path, out)
    open(out, "w").write("keep me\n")
    with pytest.raises(DataError, match="exists: choose another path or pass --overwrite_output"):
        predict_once(model_dir, runs["rte"], path, out)
    assert open(out).read() == "keep me\n"


def save_random_checkpoint(model_dir, family, dataset, out, **flags):
    """An untrained --prefix checkpoint of `dataset` with its task record, as run.py writes best_model/."""
    from types import SimpleNamespace

    from transformers import AutoConfig

    from arguments import ModelArguments
    from model.checkpoint import task_record
    from model.utils import get_model
    from tasks import get_task

    task = get_task(family, dataset)
    config = AutoConfig.from_pretrained(model_dir, num_labels=task.num_labels)
    args = ModelArguments(model_name_or_path=model_dir, prefix=True, pre_seq_len=3, **flags)
    torch.manual_seed(0)
    model = get_model(args, task.task_type, config)
    with torch.no_grad():  # N(0, 1): predictions that depend on the input
        for p in model.parameters():
            if p.requires_grad:
                p.normal_()
    data_args = SimpleNamespace(max_seq_length=48, doc_stride=16, template_id=1)
    model.task_record = task_record(task, data_args, (), model_dir)
    os.makedirs(out)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, "model.safetensors")
    )
    return out


def test_every_head_kind_and_record_shape(tiny_bert, tmp_path):
    """COPA (multiple choice), MultiRC (several rows per record), WSC (template 1 recorded), STS-B (regression),
    CoNLL-2005 SRL (a predicate index), SQuAD 2.0 (no-answer allowed) through one Predictor and one mixed call."""
    from serving import Predictor

    specs = {"copa": ("superglue", "copa"), "multirc": ("superglue", "multirc"), "wsc": ("superglue", "wsc"),
             "stsb": ("glue", "stsb"), "srl": ("srl", "conll2005"), "squad2": ("qa", "squad_v2")}  # fmt: skip
    predictor = Predictor(tiny_bert, device="cpu")
    for name, (family, dataset) in specs.items():
        predictor.attach(name, save_random_checkpoint(tiny_bert, family, dataset, str(tmp_path / name)))
    assert predictor.adapters["wsc"].data_args.template_id == 1  # the recorded preprocessing, not the default
    passage = {"text": "The cat sat.", "questions": [
        {"question": "Who sat?", "idx": 0, "answers": [{"text": "the cat", "idx": 0}, {"text": "a dog", "idx": 1}]},
        {"question": "Where?", "idx": 1, "answers": [{"text": "on a mat", "idx": 2}]}]}  # fmt: skip
    records = {
        "copa": {"premise": "The man fell.", "choice1": "He slipped.", "choice2": "He sang.", "question": "cause"},
        "multirc": {"passage": passage},
        "wsc": {"text": "Mark told Pete he was late .", "target": {"span1_index": 0, "span1_text": "Mark",
                                                                     "span2_index": 3, "span2_text": "he"}},
        "stsb": {"sentence1": "A man plays.", "sentence2": "A man is playing."},
        "srl": {"tokens": ["He", "gave", "her", "a", "book"], "index": 1},
        "squad2": {"question": "What is the capital?", "context": "Paris is the capital of France. " * 6},
    }  # fmt: skip
    names = list(records)
    out = dict(zip(names, predictor.predict([records[n] for n in names], names, batch_size=3), strict=True))
    probs = out["copa"]["scores"]
    assert out["copa"]["prediction"] == max(range(2), key=probs.__getitem__) and sum(probs) == pytest.approx(
        1
    )
    questions = out["multirc"]["prediction"]["questions"]
    assert [[a["idx"] for a in q["answers"]] for q in questions] == [[0, 1], [2]]
    assert len(out["multirc"]["scores"]) == 3 and all(
        set(s) == {"False", "True"} for s in out["multirc"]["scores"]
    )
    assert out["wsc"]["prediction"] in ("False", "True")
    assert isinstance(out["stsb"]["prediction"], float) and out["stsb"]["scores"] is None
    assert len(out["srl"]["prediction"]) == 5 and len(out["srl"]["scores"]) == 5
    assert isinstance(out["squad2"]["prediction"], str) and isinstance(out["squad2"]["scores"], float)
    assert predictor.predict([records["copa"]], "copa")[0] == out["copa"]  # alone or mixed: the same result


# -- issue 31: nothing silently wrong ------------------------------------------------------------------------------


def write_jsonl(path, rows):
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return str(path)


RTE_LINE = {"premise": "A cat sat on the mat.", "hypothesis": "An animal sat."}


def test_a_run_folder_stands_for_its_best_model_not_its_last_epoch(trained, tmp_path):
    """Every training run also writes its last epoch's weights at the top of its folder: the run folder must
    still give best_model/'s predictions."""
    model_dir, runs, _, _ = trained
    path = write_jsonl(
        tmp_path / "in.jsonl", [RTE_LINE, {"premise": "Dogs bark.", "hypothesis": "Cats bark."}]
    )
    run_folder = tmp_path / "rte-run"
    os.makedirs(run_folder / "best_model")
    shutil.copy(os.path.join(runs["rte"], "model.safetensors"), run_folder / "best_model")
    last = save_random_checkpoint(model_dir, "superglue", "rte", str(tmp_path / "last"))
    shutil.copy(os.path.join(last, "model.safetensors"), run_folder)  # the "last epoch": other weights
    got = predict_once(model_dir, str(run_folder), path, str(tmp_path / "run.jsonl"))
    best = predict_once(model_dir, str(run_folder / "best_model"), path, str(tmp_path / "best.jsonl"))
    top = predict_once(model_dir, last, path, str(tmp_path / "top.jsonl"))
    assert got == best and got != top


def long_tokens(n):
    """n words of the CoNLL fixture's sentences, repeated."""
    words = [tok for sentence in fixtures.CONLL03_SENTENCES for tok, _ in sentence]
    return [words[k % len(words)] + ("s" if k % 7 == 3 else "") for k in range(n)]


def expected_from_windows(predictor, name, record, pair_word=None):
    """Each word's (tag, score) computed by hand: cut the words into the windows serving/windows.py plans, run
    each window alone as its own short record (the task's own encoding, no windowing), and take each word from the
    window that serving/windows.py says tags it. Returns (tags, scores, number of windows)."""
    from serving.windows import best_windows, word_windows

    adapter = predictor.adapters[name]
    words = record["tokens"]
    pieces = adapter.tokenizer(words, is_split_into_words=True, add_special_tokens=False).word_ids()
    lengths = [pieces.count(w) for w in range(len(words))]
    extra = 2 + (
        len(adapter.tokenizer([pair_word], is_split_into_words=True, add_special_tokens=False)["input_ids"])
        + 1
        if pair_word
        else 0
    )  # fmt: skip  [CLS] [SEP] (+ predicate [SEP])
    budget = adapter.data_args.max_seq_length - extra
    windows = word_windows(lengths, budget)
    alone = []
    for i, j in windows:
        window = {"tokens": words[i:j]}
        if pair_word:  # the model sees the predicate's text only: any occurrence in the window stands for it
            window["index"] = words[i:j].index(pair_word)
        (out,) = predictor.predict([window], name)
        assert "truncated" not in out and len(out["prediction"]) == j - i  # each window fits
        alone.append(out)
    chosen = best_windows(lengths, windows, budget)
    tags = [alone[k]["prediction"][w - windows[k][0]] for w, k in enumerate(chosen)]
    scores = [alone[k]["scores"][w - windows[k][0]] for w, k in enumerate(chosen)]
    return tags, scores, len(windows)


def test_a_tagging_record_longer_than_max_seq_length_tags_every_word_from_its_window(trained):
    from serving import Predictor

    model_dir, runs, _, _ = trained
    predictor = Predictor(model_dir, device="cpu")
    predictor.attach("ner", runs["ner"])
    record = {"tokens": long_tokens(90)}  # --max_seq_length 48: about 4 windows
    (got,) = predictor.predict([record])  # one adapter: no adapters= needed
    tags, scores, n_windows = expected_from_windows(predictor, "ner", record)
    assert n_windows >= 3
    assert len(got["prediction"]) == len(got["scores"]) == 90
    assert all(isinstance(p, float) for p in got["scores"])  # no null score
    assert got["prediction"] == tags
    assert got["scores"] == pytest.approx(scores, abs=1e-5)


def test_a_long_srl_record_keeps_its_predicate_in_every_window(tiny_bert, tmp_path):
    from serving import Predictor

    predictor = Predictor(tiny_bert, device="cpu")
    predictor.attach("srl", save_random_checkpoint(tiny_bert, "srl", "conll2005", str(tmp_path / "srl")))
    words = [w for _ in range(14) for w in ["He", "gave", "her", "a", "book", "yesterday"]]  # 84 words
    record = {"tokens": words, "index": 1}
    short = {"tokens": words[:6], "index": 1}
    got, alone = predictor.predict([record, short], "srl")
    tags, scores, n_windows = expected_from_windows(predictor, "srl", record, pair_word="gave")
    assert n_windows >= 3 and all(isinstance(p, float) for p in got["scores"])
    assert got["prediction"] == tags and got["scores"] == pytest.approx(scores, abs=1e-5)
    again = predictor.predict([short], "srl")[0]  # a record that fits: one window, as before
    assert alone["prediction"] == again["prediction"] and alone["scores"] == pytest.approx(
        again["scores"], abs=1e-5
    )


def test_a_truncated_classification_record_says_so(trained, tmp_path):
    model_dir, runs, _, _ = trained
    long = {"premise": " ".join(["The cat sat on the mat."] * 30), "hypothesis": "An animal sat."}
    path = write_jsonl(tmp_path / "in.jsonl", [RTE_LINE, long])
    out = str(tmp_path / "out.jsonl")
    predict_once(model_dir, runs["rte"], path, out)
    short_line, long_line = read_lines(out)
    assert long_line["truncated"] is True and "truncated" not in short_line


def test_a_copa_choice_cut_by_truncation_is_marked(tiny_bert, tmp_path):
    from serving import Predictor

    predictor = Predictor(tiny_bert, device="cpu")
    predictor.attach("copa", save_random_checkpoint(tiny_bert, "superglue", "copa", str(tmp_path / "copa")))
    short = {"premise": "The man fell.", "choice1": "He slipped.", "choice2": "He sang.", "question": "cause"}
    long = {**short, "choice2": " ".join(["He sang a long song."] * 20)}
    a, b = predictor.predict([short, long])
    assert "truncated" not in a and b["truncated"] is True


def test_a_partial_file_symlink_is_never_followed(trained, tmp_path):
    model_dir, runs, _, _ = trained
    path = write_jsonl(tmp_path / "in.jsonl", [RTE_LINE])
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out.jsonl"
    os.symlink(victim, str(out) + ".partial")  # the old fixed temporary name, planted
    predict_once(model_dir, runs["rte"], path, str(out))
    assert victim.read_text() == "precious\n"
    assert not out.is_symlink() and len(read_lines(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.jsonl",
        "out.jsonl",
        "out.jsonl.partial",
        "victim.txt",
    ]


@pytest.fixture
def no_loading(monkeypatch):
    """Loading the backbone fails the test: the checks it guards must come before."""
    import serving

    def load(*args, **kwargs):
        raise AssertionError("the backbone was loaded before the check")

    monkeypatch.setattr(serving, "Predictor", load)


@pytest.mark.parametrize(
    "case,message",
    [
        ("missing output folder", "no/such/out.jsonl: its folder .*no/such does not exist; create it first"),
        ("output is a folder", "--output .*outdir is a folder: give a file path"),
        ("missing input", "--input .*nothing.jsonl does not exist"),
        ("input is a folder", "--input .*outdir is a folder: give a jsonl file"),
        (
            "NaN in an input line",
            r"in.jsonl:2: field 'meta.weight' is NaN or Infinity, which JSON cannot hold",
        ),
    ],
)
def test_paths_and_lines_are_checked_before_the_backbone_loads(trained, tmp_path, no_loading, case, message):
    model_dir, runs, _, _ = trained
    good = write_jsonl(tmp_path / "in.jsonl", [RTE_LINE])
    (tmp_path / "outdir").mkdir()
    inp, out = good, str(tmp_path / "out.jsonl")
    if case == "missing output folder":
        out = str(tmp_path / "no" / "such" / "out.jsonl")
    elif case == "output is a folder":
        out = str(tmp_path / "outdir")
    elif case == "missing input":
        inp = str(tmp_path / "nothing.jsonl")
    elif case == "input is a folder":
        inp = str(tmp_path / "outdir")
    else:  # Python's json reads NaN; echoed into the output it would not be JSON
        with open(good, "a") as f:
            f.write('{"premise": "a", "hypothesis": "b", "meta": {"weight": NaN}}\n')
    with pytest.raises(DataError, match=message):
        predict.main(["--model_name_or_path", model_dir, "--ptuning_checkpoint", runs["rte"], "--input", inp,
                      "--output", out, "--overwrite_output"])  # fmt: skip


@pytest.mark.parametrize("hard_links", [True, False])
def test_two_runs_onto_one_output_the_second_is_refused_and_the_first_kept(
    trained, tmp_path, monkeypatch, hard_links
):
    """Run B checks --output (free), predicts, and meanwhile run A writes the same --output: B is refused in one
    line, A's file is intact, and B's predictions are kept in the file the error names."""
    from serving import Predictor

    model_dir, runs, _, _ = trained
    a_in = write_jsonl(tmp_path / "a.jsonl", [RTE_LINE])
    b_in = write_jsonl(
        tmp_path / "b.jsonl", [RTE_LINE, {"premise": "Dogs bark.", "hypothesis": "Cats bark."}]
    )
    out = str(tmp_path / "out.jsonl")
    real_predict = Predictor.predict
    started = []

    def predict_while_a_runs(self, *args, **kwargs):
        if not started:  # B is past its start check: A runs to the end now
            started.append("A")
            predict_once(model_dir, runs["rte"], a_in, out)
        return real_predict(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict", predict_while_a_runs)
    if not hard_links:  # a file system without hard links: the exclusive-create fallback
        monkeypatch.setattr(
            predict.os, "link", lambda *a: (_ for _ in ()).throw(PermissionError(1, "no links"))
        )
    with pytest.raises(DataError, match="was written by another run while this one predicted") as err:
        predict_once(model_dir, runs["rte"], b_in, out)
    assert "\n" not in str(err.value)
    a_lines = read_lines(out)
    assert [{k: x[k] for k in RTE_LINE} for x in a_lines] == [RTE_LINE]  # A's file, whole
    kept = str(err.value).rsplit("kept in ", 1)[1].rstrip(".")
    assert os.path.dirname(kept) == str(tmp_path) and len(read_lines(kept)) == 2  # B's predictions


def test_overwrite_output_replaces_a_symlink_not_its_target(trained, tmp_path):
    model_dir, runs, _, _ = trained
    path = write_jsonl(tmp_path / "in.jsonl", [RTE_LINE])
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out.jsonl"
    os.symlink(victim, out)
    predict.main(["--model_name_or_path", model_dir, "--ptuning_checkpoint", runs["rte"], "--input", path,
                  "--output", str(out), "--overwrite_output"])  # fmt: skip
    assert victim.read_text() == "precious\n" and not out.is_symlink() and len(read_lines(out)) == 1
    assert oct(out.stat().st_mode & 0o777) == oct(
        0o666 & ~current_umask()
    )  # as a plain open() would create it


def current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_checkpoint_specs_with_dots_and_equals_signs():
    assert predict.checkpoints(["rte=runs/rte/best_model"]) == {"rte": "runs/rte/best_model"}
    assert predict.checkpoints(["runs/lr=0.01/best_model"]) == {"lr=0.01": "runs/lr=0.01/best_model"}
    sweep = "sweep/rte-1-1e-2-8-prefix-drop0.1-bs4-seed11"
    assert predict.checkpoints([sweep, "x=a/b=c"]) == {sweep.split("/")[1]: sweep, "x": "a/b=c"}


def test_a_search_run_folder_with_dots_in_its_name_serves(trained, tmp_path):
    model_dir, runs, _, _ = trained
    path = write_jsonl(tmp_path / "in.jsonl", [RTE_LINE])
    sweep = tmp_path / "sweep" / "lr=0.01" / "rte-1-1e-2-8-prefix-drop0.1-bs4-seed11"
    os.makedirs(sweep / "best_model")
    shutil.copy(os.path.join(runs["rte"], "model.safetensors"), sweep / "best_model")
    out = str(tmp_path / "out.jsonl")
    got = predict_once(model_dir, str(sweep), path, out)
    assert read_lines(out)[0]["adapter"] == "rte-1-1e-2-8-prefix-drop0.1-bs4-seed11"
    assert got == predict_once(model_dir, runs["rte"], path, str(tmp_path / "same.jsonl"))


def edited_checkpoint(source, out, edit):
    """A copy of the checkpoint in `source` with edit(tensors) applied."""
    tensors = load_file(os.path.join(source, "model.safetensors"))
    edit(tensors)
    os.makedirs(out)
    save_file(tensors, os.path.join(out, "model.safetensors"))
    return str(out)


def test_nan_weights_and_overflowing_logits_are_refused_naming_the_adapter(trained, tmp_path):
    model_dir, runs, _, _ = trained
    path = write_jsonl(tmp_path / "in.jsonl", [RTE_LINE])
    out = str(tmp_path / "out.jsonl")

    def nan_prefix(tensors):
        key = next(k for k in tensors if "prefix_encoder" in k)
        tensors[key][0] = float("nan")

    nanw = edited_checkpoint(runs["rte"], tmp_path / "nanw", nan_prefix)
    with pytest.raises(PTuningError, match=r"adapter 'nanw': .*holds non-finite weights \(NaN or inf\) in "):
        predict_once(model_dir, nanw, path, out)

    def huge_prefix(tensors):  # finite weights (3e38 < float32's max) whose attention overflows to inf / NaN
        key = next(k for k in tensors if "prefix_encoder" in k)
        tensors[key] = torch.full_like(tensors[key], 3e38)

    huge = edited_checkpoint(runs["rte"], tmp_path / "huge", huge_prefix)
    with pytest.raises(PTuningError, match=r"adapter 'huge' \(.*\) gives non-finite logits \(NaN or inf\)"):
        predict_once(model_dir, huge, path, out)
    assert not os.path.exists(out) and not any(n.endswith(".partial") for n in os.listdir(tmp_path))


def test_every_output_line_is_strict_json(trained, tmp_path):
    model_dir, runs, path, root = trained
    out = str(tmp_path / "out.jsonl")
    flags = [f"--ptuning_checkpoint={n}={p}" for n, p in runs.items()]
    predict.main(["--model_name_or_path", model_dir, *flags, "--input", path, "--output", out])

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    with open(out) as f:
        lines = [json.loads(line, parse_constant=refuse) for line in f]
    for line in lines:  # finite probabilities: per label summing to 1, per word in (0, 1]
        scores = line["scores"]
        if isinstance(scores, dict):
            assert sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
        elif isinstance(scores, list):
            assert scores and all(0.0 < s <= 1.0 for s in scores)


def test_the_python_api_takes_records_as_the_cli_does(trained):
    from serving import Predictor

    model_dir, runs, _, _ = trained
    predictor = Predictor(model_dir, device="cpu")
    predictor.attach("rte", runs["rte"])
    one = predictor.predict([RTE_LINE])  # one adapter: adapters= is optional
    assert one == predictor.predict([RTE_LINE], "rte")
    predictor.attach("ner", runs["ner"])
    mixed = [{"adapter": "ner", "tokens": ["EU", "rejects"]}, {"adapter": "rte", **RTE_LINE}]
    assert predictor.predict(mixed) == predictor.predict(
        [{"tokens": ["EU", "rejects"]}, RTE_LINE], ["ner", "rte"]
    )
    with pytest.raises(
        PTuningError, match=r"^predict\(\) takes a list of records, got a dict: pass \[record\]"
    ):
        predictor.predict(RTE_LINE, "rte")
    with pytest.raises(PTuningError, match='record 0: no "adapter" key, and 2 adapters are attached'):
        predictor.predict([RTE_LINE])
    with pytest.raises(PTuningError, match="record 1: its \"adapter\" is 'rte' but adapters= says 'ner'"):
        predictor.predict(mixed, "ner")


@pytest.mark.parametrize(
    "device,message",
    [
        ("cuda", r"--device 'cuda' cannot be used here \(.*\): use --device cpu"),
        ("foo", "--device 'foo' is not a device"),
    ],
)
def test_an_unusable_device_is_one_error_before_loading(tiny_bert, monkeypatch, device, message):
    import serving.predictor

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setattr(serving.predictor, "load_backbone", lambda *a, **k: pytest.fail("backbone loaded"))
    with pytest.raises(PTuningError, match=message):
        serving.predictor.Predictor(tiny_bert, device=device)


def test_a_missing_local_backbone_path_is_one_error_without_the_hub(monkeypatch, tmp_path):
    import serving.predictor

    monkeypatch.setattr(serving.predictor, "load_config", lambda *a, **k: pytest.fail("looked up"))
    missing = str(tmp_path / "no-such-backbone")
    with pytest.raises(PTuningError, match=f"--model_name_or_path {missing!r} is not a folder here"):
        serving.predictor.Predictor(missing, device="cpu")


def test_the_command_line_prints_one_error_line(trained, tmp_path):
    model_dir, runs, _, _ = trained
    path = write_jsonl(tmp_path / "in.jsonl", [RTE_LINE])
    argv = [sys.executable, "predict.py", "--model_name_or_path", model_dir, "--ptuning_checkpoint", runs["rte"],
            "--input", path, "--output", str(tmp_path / "out.jsonl"), "--device", "foo"]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [done.stderr.strip().splitlines()[-1]]
    assert done.stderr.startswith("error: --device 'foo' is not a device")
