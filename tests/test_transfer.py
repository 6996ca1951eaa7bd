"""Prefix transfer and the head levers (issue 35 items 1 and 3): --init_prefix_from (model/transfer.py),
--prefix_init zeros, --head_learning_rate and --head_warmup_epochs (training/levers.py).

Tiny random backbones from configs for the units, the tiny local BERT for run.py end to end; nothing is downloaded.
Expected values are written out by hand (learning rates, group contents) or are the saved tensors themselves."""

import json
import logging
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, BertConfig
from transformers.trainer_callback import TrainerControl, TrainerState

import fixtures
import run
from arguments import ModelArguments, PTuningTrainingArguments
from model.checkpoint import META_KEY
from model.config import PTuningError
from model.transfer import transfer_prefix
from model.utils import TaskType, build_model
from tiny import tiny_config
from training.levers import HeadWarmup, head_only_at
from training.run_folder import RunFolderError
from training.trainer import PTuningTrainer

SEQ, TOK = TaskType.SEQUENCE_CLASSIFICATION, TaskType.TOKEN_CLASSIFICATION
H, L, P = 32, 2, 4
TAGS = ["O", "B-PER", "I-PER"]


def bert(labels: int = 3, hidden: int = H, seed: int = 0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=120, hidden_size=hidden, num_hidden_layers=L, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64, num_labels=labels, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return AutoModel.from_config(config, attn_implementation="sdpa")


def make(bb=None, task=TOK, seed: int = 1, **flags):
    flags = {"prefix": True, "pre_seq_len": P, "hidden_dropout_prob": 0.0, **flags}
    args = ModelArguments(model_name_or_path="tiny", **flags)
    torch.manual_seed(seed)
    return build_model(bert() if bb is None else bb, args, task)


def save(m, folder, labels) -> str:
    """m's checkpoint as run.py writes it (with the task record's labels) into folder/best_model/."""
    m.task_record = {"labels": labels}
    os.makedirs(os.path.join(folder, "best_model"))
    tensors = {k: v.contiguous() for k, v in m.state_dict().items()}
    save_file(tensors, os.path.join(folder, "best_model", "model.safetensors"))
    return str(folder)


def trained(m):
    """Move every trainable tensor away from its init, so that a loaded tensor is told apart from a fresh one."""
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in m.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g))
    return m


def head_of(m) -> dict:
    return {n: p.detach().clone() for n, p in m.named_parameters() if n in m.head_names()}


def prompt_of(m) -> dict:
    return {n: p.detach().clone() for n, p in m.method_impl.prompt.named_parameters()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- --init_prefix_from: what is loaded -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags",
    [{}, {"prefix_projection": True, "prefix_hidden_size": 16}, {"prefix_layers": "1"}, {"prompt": True}],
)
def test_the_saved_prefix_and_head_are_loaded_exactly_when_the_labels_match(tmp_path, flags):
    flags = {"prefix": not flags.get("prompt"), **flags}
    source = trained(make(**flags))
    path = save(source, tmp_path / "src", TAGS)
    target = make(seed=2, **flags)
    loaded = transfer_prefix(target, path, TAGS)
    assert same(prompt_of(target), prompt_of(source)) and same(head_of(target), head_of(source))
    assert loaded == set(source.state_dict()) - {META_KEY}  # the whole checkpoint: prompt + classifier


def test_other_labels_give_the_new_head_this_seed_gives(tmp_path, caplog):
    """Same count, other names (or another order): the prefix is loaded, the head is the one this run's seed draws
    without the flag (loading draws no random number), not the saved one."""
    source = trained(make())
    path = save(source, tmp_path / "src", TAGS)
    fresh, target = make(seed=2), make(seed=2)
    with caplog.at_level(logging.WARNING, logger="model.transfer"):
        transfer_prefix(target, path, ["O", "B-LOC", "I-LOC"])
    assert same(prompt_of(target), prompt_of(source))
    assert same(head_of(target), head_of(fresh)) and not same(head_of(target), head_of(source))
    assert (
        "a NEW head (it has labels ['O', 'B-PER', 'I-PER'], this task ['O', 'B-LOC', 'I-LOC'])" in caplog.text
    )
    transfer_prefix(target, path, list(reversed(TAGS)))  # same names, another order: another head too
    assert same(head_of(target), head_of(fresh))


def test_another_label_count_or_head_kind_keeps_the_new_head(tmp_path):
    source = trained(make())
    path = save(source, tmp_path / "src", TAGS)
    for bb, task in ((bert(labels=5), TOK), (bert(), SEQ)):
        fresh, target = make(bb, task, seed=2), make(bb, task, seed=2)
        transfer_prefix(target, path, TAGS if bb.config.num_labels == 3 else ["O", *"ABCD"])
        assert same(prompt_of(target), prompt_of(source)) and same(head_of(target), head_of(fresh))


def test_the_head_is_everything_outside_the_backbone_and_the_prompt():
    assert make().head_names() == {"classifier.weight", "classifier.bias"}
    assert make(prefix_projection=True).head_names() == {"classifier.weight", "classifier.bias"}
    bitfit = make(prefix=False, bitfit=True)  # its biases are the backbone's: not the head
    assert bitfit.head_names() == {"classifier.weight", "classifier.bias"}
    # DeBERTa's ContextPooler is new (the backbone has no pooler): the head's
    deberta = make(AutoModel.from_config(tiny_config("deberta-v2")), SEQ)
    assert deberta.head_names() == {
        f"{m}.{p}" for m in ("pooler.context.dense", "classifier") for p in ("weight", "bias")
    }


# -- --init_prefix_from: refusals, one line naming both values ----------------------------------------------------
@pytest.mark.parametrize(
    "source_flags, target_flags, message",
    [
        ({"pre_seq_len": 8}, {}, "--pre_seq_len 8 vs 4"),
        ({"prefix": False, "prompt": True}, {}, "method prompt (--prompt) vs prefix (--prefix)"),
        ({"prefix_projection": True}, {}, "--prefix_projection True vs False"),
        ({"prefix_projection": True, "prefix_hidden_size": 16}, {"prefix_projection": True},
         "--prefix_hidden_size 16 vs 512"),
        ({"prefix_layers": "0"}, {}, "--prefix_layers [0] vs [0, 1]"),
    ],
)  # fmt: skip
def test_a_prefix_of_another_method_p_or_layout_is_refused(tmp_path, source_flags, target_flags, message):
    path = save(make(**source_flags), tmp_path / "src", TAGS)
    with pytest.raises(PTuningError, match="was trained with ") as err:
        transfer_prefix(make(**target_flags), path, TAGS)
    assert message in str(err.value) and "(checkpoint vs this run)" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_prefix_of_another_backbone_size_is_refused(tmp_path):
    path = save(make(bert(hidden=48)), tmp_path / "src", TAGS)
    with pytest.raises(PTuningError, match=r"another backbone or size \(hidden_size 48 vs 32") as err:
        transfer_prefix(make(), path, TAGS)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "flags, error, message",
    [
        ({"prefix": False}, ValueError, "--init_prefix_from only applies to --prefix or --prompt"),
        ({"prefix_init": "tokens"}, ValueError, "--prefix_init tokens and --init_prefix_from .* pass one"),
        ({"ptuning_checkpoint": "SRC"}, ValueError, "--ptuning_checkpoint loads a trained model whole"),
        ({"init_prefix_from": "nowhere"}, FileNotFoundError, "'nowhere' holds no model.safetensors"),
    ],
)
def test_flag_checks(tmp_path, flags, error, message):
    src = save(make(), tmp_path / "src", TAGS)
    flags = {"prefix": True, "init_prefix_from": src, **flags}
    flags = {k: (src if v == "SRC" else v) for k, v in flags.items()}
    with pytest.raises(error, match=message):
        ModelArguments(model_name_or_path="tiny", **flags)
    # a run folder stands for its best_model/, as --ptuning_checkpoint
    args = ModelArguments(model_name_or_path="tiny", prefix=True, init_prefix_from=src)
    assert args.init_prefix_from == os.path.join(src, "best_model")


# -- --prefix_init zeros -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags", [{}, {"prefix_projection": True, "prefix_hidden_size": 16}, {"prompt": True}]
)
def test_zeros_init_starts_the_prefix_at_exactly_zero_and_draws_nothing(flags):
    flags = {"prefix": not flags.get("prompt"), **flags}
    m, default = make(prefix_init="zeros", **flags), make(**flags)
    prompt = m.method_impl.prompt
    assert torch.equal(prompt(), torch.zeros_like(prompt()))
    if flags.get(
        "prefix_projection"
    ):  # the last layer is zero; the embedding and first layer keep their draw
        last = prompt.trans[-1]
        assert not last.weight.any() and not last.bias.any() and prompt.embedding.weight.abs().sum() > 0
        assert torch.equal(prompt.trans[0].weight, default.method_impl.prompt.trans[0].weight)
    else:
        assert not prompt.embedding.weight.any()
    assert same(head_of(m), head_of(default))  # no random number drawn: the head is the default's
    assert m.num_parameters(only_trainable=True) == default.num_parameters(only_trainable=True)


# -- --head_learning_rate -----------------------------------------------------------------------------------------
def trainer_for(m, tmp_path, **flags):
    quiet = {"report_to": "none", "disable_tqdm": True}
    args = PTuningTrainingArguments(
        str(tmp_path / "out"), learning_rate=5e-3, weight_decay=0.01, **quiet, **flags
    )
    return PTuningTrainer(model=m, args=args, task=None, data_args=None)


def groups(m, optimizer) -> list[tuple[list[str], float, float]]:
    """(parameter names, lr, weight decay) of each param group."""
    names = {id(p): n for n, p in m.named_parameters()}
    return [([names[id(p)] for p in g["params"]], g["lr"], g["weight_decay"]) for g in optimizer.param_groups]


def test_head_learning_rate_puts_the_head_in_its_own_groups_and_the_schedule_scales_both(tmp_path):
    m = make(prefix_projection=True, prefix_hidden_size=16)
    default = trainer_for(m, tmp_path).create_optimizer()
    rest_decay = [f"prefix_encoder.{n}.weight" for n in ("embedding", "trans.0", "trans.2")]
    rest_no_decay = [f"prefix_encoder.{n}.bias" for n in ("trans.0", "trans.2")]
    assert groups(m, default) == [  # HF's own two groups, unchanged
        ([*rest_decay, "classifier.weight"], 5e-3, 0.01),
        ([*rest_no_decay, "classifier.bias"], 5e-3, 0.0),
    ]
    trainer = trainer_for(m, tmp_path, head_learning_rate=2e-2)
    optimizer = trainer.create_optimizer()
    assert groups(m, optimizer) == [
        (rest_decay, 5e-3, 0.01),
        (rest_no_decay, 5e-3, 0.0),
        (["classifier.weight"], 2e-2, 0.01),
        (["classifier.bias"], 2e-2, 0.0),
    ]
    scheduler = trainer.create_scheduler(num_training_steps=10)  # HF linear decay, no warm-up
    for _ in range(3):
        optimizer.step()  # no gradients: nothing moves
        scheduler.step()
    lrs = [g["lr"] for g in optimizer.param_groups]
    assert lrs == pytest.approx([5e-3 * 0.7, 5e-3 * 0.7, 2e-2 * 0.7, 2e-2 * 0.7], abs=1e-12)  # 3 of 10 steps


# -- --head_warmup_epochs -----------------------------------------------------------------------------------------
def one_step(m, optimizer) -> None:
    ids = torch.tensor([[5, 17, 42, 8, 63, 2], [9, 31, 77, 4, 1, 1]])
    labels = torch.tensor([[0, 1, 2, 0, 1, 2], [2, 1, 0, 0, -100, -100]])
    m.train()(input_ids=ids, labels=labels).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize("flags", [{}, {"prompt": True}, {"prefix": False}])
def test_during_head_warmup_only_the_head_moves_then_everything(tmp_path, flags):
    """One epoch of warm-up: at epoch 0 a step leaves the prefix (or the fine-tuned backbone) bit-unchanged, weight
    decay included, while the head moves; at epoch 1 both move. The callback reads the epoch from the TrainerState."""
    flags = {"prefix": not flags.get("prompt"), **flags}
    m = make(**flags)
    trainer = trainer_for(m, tmp_path, head_warmup_epochs=1, num_train_epochs=2)
    assert [type(c) for c in trainer.callback_handler.callbacks].count(HeadWarmup) == 1
    optimizer = trainer.create_optimizer()

    def rest():
        return {n: p.detach().clone() for n, p in m.named_parameters() if n not in m.head_names()}

    state, control = TrainerState(), TrainerControl()
    for epoch, head_only in ((0.0, True), (1.0, False)):
        state.epoch = epoch
        trainer.callback_handler.on_epoch_begin(trainer.args, state, control)
        before_rest, before_head = rest(), head_of(m)
        one_step(m, optimizer)
        assert same(rest(), before_rest) == head_only
        assert not any(torch.equal(p, before_head[n]) for n, p in head_of(m).items())
    trainer.callback_handler.on_train_end(trainer.args, state, control)
    assert m.num_parameters(only_trainable=True) == make(**flags).num_parameters(only_trainable=True)


def test_the_warmup_epoch_comes_from_the_trainer_state():
    state = TrainerState()
    for epoch, expected in ((0, True), (0.5, True), (1.0, True), (1.99, True), (2.0, False), (3.5, False)):
        state.epoch = epoch
        assert head_only_at(state, 2) is expected, epoch


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"head_learning_rate": 0.0}, "--head_learning_rate must be a positive number"),
        ({"head_warmup_epochs": -1}, "--head_warmup_epochs must be >= 0"),
        ({"head_warmup_epochs": 3, "num_train_epochs": 3}, "leaves none of the --num_train_epochs 3"),
    ],
)
def test_lever_flag_checks(tmp_path, flags, message):
    with pytest.raises(ValueError, match=message):
        PTuningTrainingArguments(output_dir=str(tmp_path), **flags)


# -- the identity rule: each flag is result-changing (training/flags.py lists none of them) ------------------------
def test_the_new_flags_are_compared_on_resume_and_by_sweeps(tmp_path):
    from search import run_payload
    from training.flags import NOT_IDENTITY, identity_differences

    src = save(make(), tmp_path / "src", TAGS)
    base = "--model_name_or_path m --task_name superglue --dataset_name rte --do_train --prefix".split()
    recorded = run_payload(base)
    changed = {
        "init_prefix_from": (["--init_prefix_from", src], repr(os.path.join(src, "best_model"))),
        "head_learning_rate": (["--head_learning_rate", "0.1"], "0.1"),
        "head_warmup_epochs": (["--head_warmup_epochs", "1"], "1"),
    }
    for name, (flags, now) in changed.items():
        assert name not in NOT_IDENTITY
        default = "0" if name == "head_warmup_epochs" else "None"
        assert identity_differences(recorded, run_payload([*base, *flags])) == [
            f"--{name}: {default} (recorded) vs {now} (now)"
        ]


# -- run.py end to end ---------------------------------------------------------------------------------------------
COMMON = ["--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--eval_strategy", "epoch",
          "--save_strategy", "epoch", "--report_to", "none", "--disable_tqdm", "true", "--seed", "7",
          "--max_seq_length", "48", "--learning_rate", "5e-2", "--prefix", "--pre_seq_len", "4", "--do_train",
          "--do_eval"]  # fmt: skip


def ner_argv(model_dir, data, out, dataset="conll2003", epochs="1", *extra):
    return ["--model_name_or_path", model_dir, "--task_name", "ner", "--dataset_name", dataset, "--data_dir", data,
            "--output_dir", str(out), "--num_train_epochs", epochs, *COMMON, *extra]  # fmt: skip


def checkpoints(out) -> list[str]:
    return sorted((d for d in os.listdir(out) if d.startswith("checkpoint-")), key=lambda d: int(d[11:]))


def read(path) -> dict:
    with open(path) as f:
        return json.load(f)


def prefix_and_head(folder):
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    return (
        {k: v for k, v in tensors.items() if k.startswith("prefix_encoder.")},
        {k: v for k, v in tensors.items() if k.startswith("classifier.")},
    )


def test_run_py_starts_from_another_runs_prefix_and_head_then_warms_up_the_head(tiny_bert, tmp_path, caplog):
    """A CoNLL-2003 run started from another CoNLL-2003 run (same tags): after the one warm-up epoch its checkpoint
    holds exactly the source's prefix and a head moved from the source's; after the second epoch the prefix moved too.
    args.json records both flags. A CoNLL-2004 run (other tags) from the same source gets a new head, and says so;
    rerunning the first folder with another --init_prefix_from is refused as another run."""
    data = fixtures.conll2003(str(tmp_path / "data"))
    run.main(ner_argv(tiny_bert, data, tmp_path / "src"))
    src_prefix, src_head = prefix_and_head(tmp_path / "src" / "best_model")

    out = tmp_path / "transfer"
    argv = ner_argv(tiny_bert, data, out, "conll2003", "2", "--init_prefix_from", str(tmp_path / "src"),
                    "--head_warmup_epochs", "1", "--head_learning_rate", "1e-1")  # fmt: skip
    run.main(argv)
    (prefix_1, head_1), (prefix_2, _) = (prefix_and_head(out / c) for c in checkpoints(out))
    assert same(prefix_1, src_prefix) and not same(prefix_2, src_prefix)
    assert head_1.keys() == src_head.keys() and not any(torch.equal(head_1[k], src_head[k]) for k in head_1)
    recorded = read(out / "args.json")
    assert recorded["model_args"]["init_prefix_from"] == str(tmp_path / "src" / "best_model")
    assert recorded["training_args"]["head_warmup_epochs"] == 1
    assert recorded["training_args"]["head_learning_rate"] == 0.1

    other = fixtures.conll04_json(str(tmp_path / "conll04"))
    with caplog.at_level(logging.WARNING, logger="model.transfer"):
        run.main(ner_argv(tiny_bert, other, tmp_path / "c04", "conll2004", "1", "--init_prefix_from",
                          str(tmp_path / "src")))  # fmt: skip
    # the same count (9), other names: a new head, as the unit tests pin tensor by tensor
    assert "started the prefix from it and a NEW head (it has labels ['O', 'B-PER', " in caplog.text
    assert "this task ['O', 'B-Loc', 'B-Peop', " in caplog.text

    with pytest.raises(RunFolderError, match="--init_prefix_from: ") as err:
        run.main([*argv[: argv.index("--init_prefix_from") + 1], str(tmp_path / "c04"),
                  *argv[argv.index("--init_prefix_from") + 2 :]])  # fmt: skip
    assert str(tmp_path / "c04" / "best_model") in str(err.value)


def test_a_run_resumed_during_head_warmup_ends_as_the_uninterrupted_one(tiny_bert, tmp_path):
    """Three epochs, two of head warm-up, the head at its own rate, saved every epoch: a folder holding only the first
    epoch's checkpoint (as a run killed in epoch 2 leaves it) resumes to bit-identical final weights and the same
    best_results.json."""
    data = fixtures.superglue_rte(str(tmp_path / "data"))
    argv = ["--model_name_or_path", tiny_bert, "--task_name", "superglue", "--dataset_name", "rte", "--data_dir",
            data, "--num_train_epochs", "3", "--head_warmup_epochs", "2", "--head_learning_rate", "0.1",
            *COMMON]  # fmt: skip
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run.main([*argv, "--output_dir", str(whole)])
    first = checkpoints(whole)[0]
    shutil.copytree(whole / first, cut / first)  # makes cut/ too
    shutil.copy(whole / "args.json", cut / "args.json")
    run.main([*argv, "--output_dir", str(cut)])
    assert read(cut / "train_results.json")["train_resumed_from_step"] == int(first[11:]) == 3  # 12 rows / 4
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read(whole / "best_results.json") == read(cut / "best_results.json")
