"""predict.py end to end: three adapters trained by run.py on one tiny backbone (RTE with a prefix, CoNLL-2003 with a
prompt, SQuAD with a prefix and several windows per example), one input file that mixes them, and every output line
equal to what `run.py --do_predict` wrote for that adapter on the same example. Then the one-line errors."""

import json
import os

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
    model_dir, runs, path, _ = trained
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
