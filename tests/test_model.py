"""model/: one P-tuning v2 mechanism for every encoder, pinned against hand-written references.

Tiny random backbones from configs (no download). Numbers in assertions are formulas of the config sizes."""

import copy
from functools import partial

import pytest
import torch
from transformers import (
    AutoModel,
)

from arguments import ModelArguments
from model.backbones import shifted_position_ids
from model.utils import TaskType, build_model
from tiny import tiny_config

H, L, HEADS, V, P = 32, 2, 4, 120, 5
# the shared tiny configs (benchmarks/common/tiny.py) at 2 layers and HF's initializer_range
CONFIGS = {
    kind: partial(tiny_config, kind, num_hidden_layers=L, initializer_range=0.02)
    for kind in ("bert", "roberta", "electra", "deberta", "deberta-v2")
}
BACKBONES = ["bert", "roberta", "deberta", "deberta-v2"]


def make_backbone(kind, attn="sdpa", seed=0):
    torch.manual_seed(seed)
    config = CONFIGS[kind]()
    attn = "eager" if kind.startswith("deberta") else attn
    return AutoModel.from_config(config, attn_implementation=attn).eval()


def make_model(kind, task=TaskType.SEQUENCE_CLASSIFICATION, attn="sdpa", seed=0, **flags):
    args = ModelArguments(
        model_name_or_path="tiny", pre_seq_len=P, attn_implementation=attn, hidden_dropout_prob=0.0, **flags
    )
    torch.manual_seed(seed + 1)
    return build_model(make_backbone(kind, attn, seed), args, task).eval()


def batch(B=3, T=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 6:] = 0  # a padded row
    ids[1, 6:] = 1  # pad id
    return ids, mask


def inputs_for(task, ids, mask):
    if task == TaskType.MULTIPLE_CHOICE:
        other = torch.randint(
            5, V, ids.shape, generator=torch.Generator().manual_seed(7)
        )  # a different choice
        return dict(
            input_ids=torch.stack([ids, other], 1),
            attention_mask=torch.stack([mask, torch.ones_like(mask)], 1),
            labels=torch.tensor([0, 1, 0]),
        )  # (B, C=2, T)
    if task == TaskType.QUESTION_ANSWERING:
        return dict(
            input_ids=ids,
            attention_mask=mask,
            start_positions=torch.tensor([1, 2, 3]),
            end_positions=torch.tensor([2, 3, 4]),
        )
    if task == TaskType.TOKEN_CLASSIFICATION:
        labels = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(1))
        return dict(input_ids=ids, attention_mask=mask, labels=labels.masked_fill(mask == 0, -100))
    return dict(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 2]))


def head_params(kind, task):
    pooler = (
        (H * H + H)
        if kind.startswith("deberta") and task in (TaskType.SEQUENCE_CLASSIFICATION, TaskType.MULTIPLE_CHOICE)
        else 0
    )  # DeBERTa's new ContextPooler
    out = {
        TaskType.SEQUENCE_CLASSIFICATION: 3,
        TaskType.TOKEN_CLASSIFICATION: 3,
        TaskType.MULTIPLE_CHOICE: 1,
        TaskType.QUESTION_ANSWERING: 2,
    }[task]
    return pooler + H * out + out


# 1. trainable parameters are exactly prefix encoder + head --------------------------------------------------------
@pytest.mark.parametrize("kind", BACKBONES)
@pytest.mark.parametrize("task", list(TaskType))
@pytest.mark.parametrize("projection", [False, True])
def test_trainable_parameters_match_the_formula(kind, task, projection):
    model = make_model(kind, task, prefix=True, prefix_projection=projection, prefix_hidden_size=16)
    prefix = (P * H + H * 16 + 16 + 16 * 2 * L * H + 2 * L * H) if projection else P * 2 * L * H
    assert model.num_parameters(only_trainable=True) == prefix + head_params(kind, task)
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert "backbone" not in trainable


@pytest.mark.parametrize("kind", BACKBONES)
def test_backbone_is_bit_identical_after_an_optimizer_step(kind):
    model = make_model(kind, prefix=True).train()
    before = copy.deepcopy(model.backbone.state_dict())
    prefix_before = model.prefix_encoder.embedding.weight.detach().clone()  # (P, 2·L·H)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-1)
    model(**inputs_for(TaskType.SEQUENCE_CLASSIFICATION, *batch())).loss.backward()
    opt.step()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # every layer's key block and value block of the prefix table moved: AdamW's first step moves an entry by up to
    # lr = 0.1 (less where |grad| is near eps); without gradient only weight decay, lr·0.01·|w| ≈ 2e-5
    moved = (model.prefix_encoder.embedding.weight.detach() - prefix_before).abs()
    per_block = moved.view(P, L, 2, H).amax(dim=(0, 3))  # (layer, key/value)
    assert per_block.min() > 0.01


# 2. equality with a hand-written reference: tests/test_backbones.py, for every row of model/backbones.py ------------


# 3. a masked-out prefix reproduces the bare backbone -----------------------------------------------------------------
@pytest.mark.parametrize("kind", BACKBONES + ["electra"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_masked_prefix_reproduces_the_bare_backbone(kind, attn):
    bare = make_backbone(kind, attn)
    model = make_model(kind, TaskType.TOKEN_CLASSIFICATION, attn=attn, prefix=True, shift_positions=False)
    ids, mask = batch()
    closed = torch.zeros(ids.shape[0], P, dtype=torch.bool)
    with torch.no_grad():
        got = model.encode(ids, mask, prefix_attention_mask=closed)
        want = bare(input_ids=ids, attention_mask=mask)[0]
        open_ = model.encode(ids, mask)
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], atol=1e-5, rtol=1e-5)
    assert (open_[keep] - want[keep]).abs().max() > 1e-3  # an open prefix does change the output


def test_positions_are_shifted_by_P_by_default():
    model = make_model("bert", prefix=True)
    ids, _ = batch()
    assert shifted_position_ids(model.quirks, model.config, ids, P)[0].tolist() == list(range(P, P + 10))
    roberta = make_model("roberta", prefix=True)
    ids[0, 8:] = 1
    assert shifted_position_ids(roberta.quirks, roberta.config, ids, P)[0].tolist() == [
        2 + P + i for i in range(8)
    ] + [1, 1]


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_too_long_input_for_the_position_table_is_a_clear_error(kind):
    model = make_model(kind, prefix=True)
    ids = torch.full((1, 62), 7)
    with pytest.raises(ValueError, match="exceeds the .* positions"):
        model(input_ids=ids)
    make_model(kind, prefix=True, shift_positions=False)(input_ids=torch.full((1, 60), 7))  # fits unshifted


# 4. learning ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BACKBONES)
@pytest.mark.parametrize("task", list(TaskType))
def test_loss_decreases_and_gradients_reach_every_prefix_parameter(kind, task):
    model = make_model(kind, task, prefix=True, prefix_projection=True, prefix_hidden_size=16).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2)
    inputs = inputs_for(task, *batch())
    losses = []
    for step in range(8):
        opt.zero_grad()
        loss = model(**inputs).loss
        loss.backward()
        if step == 0:
            assert all(
                p.grad is not None and p.grad.abs().sum() > 0 for p in model.prefix_encoder.parameters()
            )
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1e-3


# 5. gradient checkpointing -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bert", "deberta-v2"])
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(kind):
    results = []
    for checkpointing in (False, True):
        model = make_model(kind, prefix=True).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        loss = model(**inputs_for(TaskType.SEQUENCE_CLASSIFICATION, *batch())).loss
        loss.backward()
        results.append((loss.detach(), model.prefix_encoder.embedding.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


# 6. prefix-only checkpoints ------------------------------------------------------------------------------------------
# (the round trip onto a differently seeded model, for every backbone and head: tests/test_backbones.py)
def test_checkpoint_onto_another_backbone_or_setting_is_refused():
    state = make_model("bert", prefix=True).state_dict()
    with pytest.raises(ValueError, match="model_type: checkpoint 'bert' vs model 'roberta'"):
        make_model("roberta", prefix=True).load_state_dict(state)
    longer = build_model(
        make_backbone("bert"),
        ModelArguments(model_name_or_path="t", prefix=True, pre_seq_len=P + 1),
        TaskType.SEQUENCE_CLASSIFICATION,
    )
    with pytest.raises(ValueError, match=f"pre_seq_len: checkpoint {P} vs model {P + 1}"):
        longer.load_state_dict(state)
    with pytest.raises(ValueError, match="not a P-tuning checkpoint"):
        make_model("bert", prefix=True).load_state_dict(
            {k: v for k, v in state.items() if k != "ptuning_meta"}
        )


# 7. prompt tuning and fine-tuning ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BACKBONES)
def test_prompt_tuning_trains_only_prompt_and_head(kind):
    model = make_model(kind, prompt=True).train()
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {"prompt_encoder.embedding.weight", "classifier.weight", "classifier.bias"} | (
        {"pooler.context.dense.weight", "pooler.context.dense.bias"} if kind.startswith("deberta") else set()
    )
    assert model.num_parameters(True) == P * H + head_params(kind, TaskType.SEQUENCE_CLASSIFICATION)
    loss = model(**inputs_for(TaskType.SEQUENCE_CLASSIFICATION, *batch())).loss
    loss.backward()
    assert model.prompt_encoder.embedding.weight.grad.abs().sum() > 0


def test_prompt_runs_the_embedding_layer_once():
    """[prompt; words] go through positions/LayerNorm once: the hidden state equals the backbone fed those embeddings."""
    model = make_model("bert", prompt=True)
    ids, mask = batch()
    with torch.no_grad():
        got = model.encode(ids, mask)
        words = model.backbone.embeddings.word_embeddings(ids)
        prompt = model.prompt_encoder.embedding.weight.expand(3, -1, -1)
        full_mask = torch.cat([torch.ones(3, P, dtype=torch.long), mask], 1)
        want = model.backbone(inputs_embeds=torch.cat([prompt, words], 1), attention_mask=full_mask)[0][:, P:]
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("kind", BACKBONES)
def test_finetuning_trains_the_whole_backbone(kind):
    model = make_model(kind, TaskType.TOKEN_CLASSIFICATION).train()
    assert all(p.requires_grad for p in model.parameters())
    model(**inputs_for(TaskType.TOKEN_CLASSIFICATION, *batch())).loss.backward()
    assert model.backbone.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_prefix_depth_ablation_sizes_the_table_for_the_chosen_layers():
    """Sizes and the range check; which layers see prefix columns in the forward: tests/test_backbones.py."""
    model = make_model("bert", prefix=True, prefix_layers="1")
    assert model.prefix_encoder.embedding.weight.shape == (P, 2 * 1 * H)
    prefixes = model.layer_prefixes(2)
    assert prefixes[0] is None and prefixes[1][0].shape == (2, HEADS, P, H // HEADS)
    with pytest.raises(ValueError, match="layers must lie in 0..1"):
        make_model("bert", prefix=True, prefix_layers="0-2")


def test_projection_is_embedding_linear_tanh_linear():
    """--prefix_projection: Embedding(P, H) -> Linear(H, h) -> tanh -> Linear(h, 2·L·H), as the original's MLP."""
    model = make_model("bert", prefix=True, prefix_projection=True, prefix_hidden_size=16)
    encoder = model.prefix_encoder
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # N(0, 1): pre-activations of a few units, where tanh, ReLU, GELU differ by O(1)
        for p in encoder.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        E, first, second = encoder.embedding.weight, encoder.trans[0], encoder.trans[2]
        by_hand = torch.tanh(E @ first.weight.T + first.bias) @ second.weight.T + second.bias  # (P, 2·L·H)
        torch.testing.assert_close(encoder(), by_hand, rtol=1e-5, atol=1e-5)
        assert by_hand.shape == (P, 2 * L * H)
        # real numbers: every embedding entry 1, W0 = 0.5 / H, b0 = 0: each hidden unit is tanh(0.5); W2 = 1, b2 = 0
        E.fill_(1.0)
        first.weight.fill_(0.5 / H)
        first.bias.zero_()
        second.weight.fill_(1.0)
        second.bias.zero_()
        want = 16 * 0.46211715726000974  # 16 × tanh(0.5); ReLU would give 8.0
        torch.testing.assert_close(encoder(), torch.full((P, 2 * L * H), want), rtol=1e-6, atol=1e-6)


def test_bf16_autocast_matches_fp32_and_keeps_fp32_prefix_gradients():
    inputs = inputs_for(TaskType.SEQUENCE_CLASSIFICATION, *batch())
    grads = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = make_model("bert", prefix=True).train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = model(**inputs)
        out.loss.backward()
        weight = model.prefix_encoder.embedding.weight
        assert weight.dtype == torch.float32 and weight.grad.dtype == torch.float32  # optimizer sees fp32
        grads[dtype] = (out.loss.item(), weight.grad.clone())
    (loss32, grad32), (loss16, grad16) = grads[torch.float32], grads[torch.bfloat16]
    assert abs(loss16 - loss32) < 2e-2  # bf16 has ~3 significant digits
    assert torch.nn.functional.cosine_similarity(grad16.flatten(), grad32.flatten(), dim=0) > 0.99


def test_prefix_is_expanded_not_copied_per_example():
    model = make_model("bert", prefix=True)
    key = model.layer_prefixes(4)[0][0]
    assert key.shape == (4, HEADS, P, H // HEADS) and key.stride(0) == 0


def test_backbones_load_as_plain_pytorch_without_hub_kernels(tiny_bert):
    """transformers 5.25 defaults from_pretrained to use_kernels=True: on CUDA, .eval() then swaps the activations for
    kernels fetched from the Hub and, offline, stops the first evaluation (seen on an H200 by gpu_check.py).
    get_model and the serving Predictor load the backbone with the kernels off."""
    from transformers import AutoConfig
    from transformers.utils import is_kernels_available

    from model.utils import get_model
    from serving.predictor import Predictor

    if not is_kernels_available():
        pytest.skip("the `kernels` package is not installed: transformers cannot turn hub kernels on")
    assert AutoModel.from_pretrained(tiny_bert).use_kernels is True  # the default being guarded against
    args = ModelArguments(model_name_or_path=tiny_bert, prefix=True, pre_seq_len=P)
    model = get_model(
        args, TaskType.SEQUENCE_CLASSIFICATION, AutoConfig.from_pretrained(tiny_bert, num_labels=2)
    )
    assert model.backbone.use_kernels is False
    assert model.eval().backbone.use_kernels is False
    assert Predictor(tiny_bert, device="cpu").model.backbone.use_kernels is False


def test_a_backbone_saved_in_float16_loads_in_float32_unless_asked(tmp_path):
    """transformers 5 loads the saved weights' dtype by default ("auto"); load_backbone keeps 4.x's float32, and
    --backbone_dtype is the one way to another dtype."""
    from model.utils import load_backbone

    AutoModel.from_config(CONFIGS["bert"]()).half().save_pretrained(tmp_path)
    assert {p.dtype for p in AutoModel.from_pretrained(tmp_path).parameters()} == {
        torch.float16
    }  # the 5.x default
    assert {p.dtype for p in load_backbone(str(tmp_path)).parameters()} == {torch.float32}
    assert {p.dtype for p in load_backbone(str(tmp_path), dtype=torch.bfloat16).parameters()} == {
        torch.bfloat16
    }


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_frozen_backbone_stored_in_bf16_trains_a_float32_prefix(tiny_bert, method):
    """--backbone_dtype bfloat16 (with --bf16): the backbone's weights are bf16; what trains stays float32 and is the
    same set; under bf16 autocast the logits stay within bf16 error of the exact float32 model, far closer than
    another prefix moves them, and the gradient reaches the prefix/prompt (the prompt's use shows there)."""
    from transformers import AutoConfig

    from model.utils import get_model

    table = f"{method}_encoder.embedding.weight"

    def build(dtype, seed):
        args = ModelArguments(
            model_name_or_path=tiny_bert, pre_seq_len=P, backbone_dtype=dtype, **{method: True}
        )
        model = get_model(
            args, TaskType.SEQUENCE_CLASSIFICATION, AutoConfig.from_pretrained(tiny_bert, num_labels=2)
        )
        with torch.no_grad():  # N(0, 1): the prefix moves the logits by O(1)
            weight = dict(model.named_parameters())[table]
            weight.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(seed)))
            model.classifier.weight.copy_(torch.randn(2, H, generator=torch.Generator().manual_seed(9)))
        return model.eval()

    exact, half, other = build("float32", 0), build("bfloat16", 0), build("float32", 1)
    assert {p.dtype for p in half.backbone.parameters()} == {torch.bfloat16}
    trained = {n: p for n, p in half.named_parameters() if p.requires_grad}
    assert sorted(trained) == sorted(n for n, p in exact.named_parameters() if p.requires_grad)
    assert table in trained and {p.dtype for p in trained.values()} == {torch.float32}
    ids = torch.randint(5, V, (3, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 5:] = 0
    with torch.no_grad():
        want = exact(input_ids=ids, attention_mask=mask).logits
        moved = other(input_ids=ids, attention_mask=mask).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = half(input_ids=ids, attention_mask=mask).logits.float()
    err, effect = ((got - want).norm() / want.norm()).item(), ((moved - want).norm() / want.norm()).item()
    assert err < 3e-2, (err, effect)
    # an input-level prompt moves a tiny random model by less than bf16 error: its gradient shows its use
    if method == "prefix":
        assert effect > 10 * err, (err, effect)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half.train()(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 1])).loss.backward()
    grad = trained[table].grad
    assert grad.dtype == torch.float32 and torch.isfinite(grad).all() and grad.abs().sum() > 0
