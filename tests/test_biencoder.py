"""model/biencoder.py: DPR's loss against a hand-written one, the shared-backbone encoders against two separate frozen
copies (the original's layout), pooling and cosine similarity by hand, and what trains per method, counted by hand.

The tiny BERT (tests/tiny.py: 3 layers x 32, 4 heads, dropout 0) is random; trained tensors are redrawn N(0, 1) where a
test compares encoders, so a prefix that went to the wrong encoder moves the embeddings far beyond the tolerance."""

import copy
import math

import pytest
import torch
from transformers import AutoModel

from model.biencoder import BiEncoder, nll_loss, pool, retrieval_method_config, similarity
from model.ptuning import PTuningModel
from tiny import TINY_SIZES, bert_tokenizer, tiny_config
from training.retrieval_eval import encode_texts, model_fingerprint

L, H, P = TINY_SIZES["num_hidden_layers"], TINY_SIZES["hidden_size"], 4


def tiny_backbone(seed: int = 0):
    torch.manual_seed(seed)
    return AutoModel.from_config(tiny_config("bert"), attn_implementation="sdpa").eval()


def build(method: str = "prefix", pooling: str = "cls", sim: str = "dot", **kwargs) -> BiEncoder:
    backbone = tiny_backbone()
    model = BiEncoder(backbone, retrieval_method_config(backbone.config, method, P, **kwargs), pooling, sim)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad and method in ("prefix", "prompt"):
                param.copy_(torch.randn(param.shape, generator=g))
    return model.eval()


def batch(rows: int, T: int = 7, seed: int = 2) -> dict:
    """Random token rows, row r padded after T - r tokens (id 0 = BERT's [PAD]); token types all 0 as the original."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, TINY_SIZES["vocab_size"], (rows, T), generator=g)
    mask = torch.ones_like(ids)
    for r in range(rows):
        mask[r, T - r :] = 0
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def backbone_size(backbone) -> int:
    return sum(p.numel() for p in backbone.parameters())


# -- the loss -------------------------------------------------------------------------------------------------------
def test_loss_is_dprs_nll_written_by_hand():
    """3 questions, 6 passages: question i's positive at 2i, its hard negative at 2i + 1; the rest in-batch."""
    g = torch.Generator().manual_seed(0)
    q, p = torch.randn(3, 5, generator=g), torch.randn(6, 5, generator=g)
    p[0], p[2] = 3 * q[0], -3 * q[1]  # question 0 ranks its positive first, question 1 last
    positive = torch.tensor([0, 2, 4])
    out = nll_loss(similarity(q, p), positive)

    total, correct = 0.0, 0
    for i in range(3):
        s = [sum(q[i, k].item() * p[j, k].item() for k in range(5)) for j in range(6)]
        log_z = math.log(sum(math.exp(x) for x in s))
        total += -(s[positive[i]] - log_z)
        correct += max(range(6), key=lambda j: s[j]) == positive[i].item()
    assert out.loss.item() == pytest.approx(total / 3, rel=1e-6)
    assert out.correct.item() == correct and 1 <= correct <= 2


def test_forward_scores_every_question_against_every_passage():
    model = build()
    questions, passages = batch(2, seed=3), batch(4, seed=4)
    positive = torch.tensor([0, 2])
    out = model(questions, passages, positive)
    q, p = model.encode_questions(**questions), model.encode_passages(**passages)
    assert out.q.shape == (2, H) and out.p.shape == (4, H) and out.scores.shape == (2, 4)
    torch.testing.assert_close(out.scores, q @ p.T)
    torch.testing.assert_close(out.loss, nll_loss(q @ p.T, positive).loss)
    assert out["loss"] is out.loss and out[0] is out.loss  # as HF Trainer reads it
    assert "loss" not in model(questions, passages)  # no positives given: no loss key


# -- one shared frozen backbone == two frozen copies ------------------------------------------------------------
@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_shared_backbone_equals_two_frozen_copies(method):
    model = build(method)
    questions, passages = batch(3, seed=3), batch(4, seed=4)
    shared = {
        "question_model": model.encode_questions(**questions),
        "ctx_model": model.encode_passages(**passages),
    }
    inputs = {"question_model": questions, "ctx_model": passages}
    for name, encoder in zip(("question_model", "ctx_model"), model.encoders(), strict=True):
        copy_ = tiny_backbone()  # an independent backbone with the same weights
        for (k, a), b in zip(copy_.state_dict().items(), model.backbone.state_dict().values(), strict=True):
            assert torch.equal(a, b), k
        reference = PTuningModel(copy_, encoder.method_config).eval()  # the single-model path, its own prefix
        reference.method_impl.prompt.load_state_dict(encoder.method_impl.prompt.state_dict())
        expected = reference.encode(**inputs[name])[:, 0]  # (B, H): [CLS], positions 0..T-1
        torch.testing.assert_close(shared[name], expected, atol=1e-6, rtol=0)
    # the two encoders differ (own prefixes), and from the bare backbone
    bare = model.backbone(**questions)[0][:, 0]
    assert not torch.allclose(model.encode_passages(**questions), shared["question_model"], atol=1e-2)
    assert not torch.allclose(bare, shared["question_model"], atol=1e-2)
    # one backbone's parameters, held once; two prompts besides
    prompt = P * (2 * L * H if method == "prefix" else H)
    assert model.num_parameters() == backbone_size(model.backbone) + 2 * prompt
    keys = list(model.state_dict())
    assert sum(k.startswith("backbone.") for k in keys) == len(model.backbone.state_dict())
    expected_keys = {"prefix": "prefix_encoder.embedding.weight", "prompt": "prompt_encoder.embedding.weight"}
    rest = {k for k in keys if not k.startswith("backbone.")}
    assert rest == {f"{t}.{expected_keys[method]}" for t in ("question_model", "ctx_model")}


def test_prefix_positions_are_unshifted():
    """Real tokens at 0..T-1 as the original's prefix model; the NLU default (shifted by P) gives other vectors."""
    model = build()
    questions = batch(2)
    shifted = copy.deepcopy(model.question_model.method_config)
    object.__setattr__(shifted, "shift_positions", True)
    reference = PTuningModel(tiny_backbone(), shifted).eval()
    reference.prefix_encoder.load_state_dict(model.question_model.prefix_encoder.state_dict())
    assert model.method_config.shift_positions is False
    assert not torch.allclose(
        model.encode_questions(**questions), reference.encode(**questions)[:, 0], atol=1e-3
    )


# -- pooling and similarity -----------------------------------------------------------------------------------------
def test_cls_and_mean_pooling_by_hand_on_a_padded_batch():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(2, 4, 3, generator=g)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert torch.equal(pool(hidden, mask, "cls"), hidden[:, 0])
    by_hand = torch.tensor(
        [[sum(hidden[b, t, h].item() for t in range(n)) / n for h in range(3)] for b, n in ((0, 3), (1, 2))]
    )
    torch.testing.assert_close(pool(hidden, mask, "mean"), by_hand)


@pytest.mark.parametrize("method", ["prefix", "prompt"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_encoder_pools_its_hidden_states_and_ignores_padding(pooling, method):
    """The prompt's own outputs are not pooled: hidden states are the real tokens' only."""
    model = build(method, pooling=pooling)
    inputs = batch(3)
    hidden = model.question_model.hidden(inputs)  # (B, T, H)
    mask = inputs["attention_mask"]
    for b in range(3):
        n = int(mask[b].sum())
        by_hand = hidden[b, 0] if pooling == "cls" else hidden[b, :n].sum(0) / n
        torch.testing.assert_close(model.encode_questions(**inputs)[b], by_hand)
        alone = {k: v[b : b + 1, :n] for k, v in inputs.items()}  # the row without its padding
        torch.testing.assert_close(model.encode_questions(**alone)[0], by_hand, atol=1e-5, rtol=1e-5)


def test_cosine_similarity_by_hand():
    g = torch.Generator().manual_seed(0)
    q, p = torch.randn(2, 4, generator=g), torch.randn(3, 4, generator=g)
    scores = similarity(q, p, "cos")
    for i in range(2):
        for j in range(3):
            dot = sum(q[i, k].item() * p[j, k].item() for k in range(4))
            norms = math.sqrt(sum(x * x for x in q[i].tolist())) * math.sqrt(
                sum(x * x for x in p[j].tolist())
            )
            assert scores[i, j].item() == pytest.approx(dot / norms, rel=1e-5)
    model = build(sim="cos")
    out = model(batch(2), batch(3, seed=5))
    assert out.scores.abs().max() <= 1 + 1e-6


# -- what trains ----------------------------------------------------------------------------------------------------
def test_only_the_two_prefixes_train_and_both_get_gradients():
    backbone = tiny_backbone()
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = BiEncoder(backbone, retrieval_method_config(backbone.config, "prefix", P)).train()
    assert model.num_parameters(only_trainable=True) == 2 * P * 2 * L * H  # 1,536: two tables (P, 2·L·H)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "question_model.prefix_encoder.embedding.weight",
        "ctx_model.prefix_encoder.embedding.weight",
    }
    for encoder in model.encoders():  # N(0, initializer_range) as HF's init gave the original's prefix
        assert encoder.prefix_encoder.embedding.weight.std().item() == pytest.approx(0.3, rel=0.15)

    out = model(batch(2, seed=3), batch(4, seed=4), torch.tensor([0, 2]))
    out.loss.backward()
    for encoder in model.encoders():
        grad = encoder.prefix_encoder.embedding.weight.grad
        assert grad is not None and grad.abs().sum() > 0
    assert all(p.grad is None for p in model.backbone.parameters())
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()
    assert all(torch.equal(v, frozen[k]) for k, v in model.backbone.state_dict().items())


def test_prefix_dropout_defaults_to_the_backbones_hidden_dropout():
    backbone = tiny_backbone()
    backbone.config.hidden_dropout_prob = 0.1  # the original's --dropout, written into BERT's config
    config = retrieval_method_config(backbone.config, "prefix", P)
    assert (config.dropout, config.prefix_dropout) == (0.1, None)
    own = retrieval_method_config(backbone.config, "prefix", P, prefix_dropout=0.3)
    model = BiEncoder(backbone, own)
    assert model.question_model.prefix_encoder.dropout.p == 0.3
    assert model.question_model.method_impl.dropout.p == 0.1


@pytest.mark.parametrize("method", ["finetune", "bitfit"])
def test_backbone_training_methods_get_two_backbone_copies(method):
    backbone = tiny_backbone()
    size = backbone_size(backbone)
    biases = sum(p.numel() for n, p in backbone.named_parameters() if n.endswith("bias"))
    model = BiEncoder(backbone, retrieval_method_config(backbone.config, method))
    q, c = model.question_model.backbone, model.ctx_model.backbone
    assert q is not c and not hasattr(model, "backbone")
    assert model.num_parameters() == 2 * size
    assert model.num_parameters(only_trainable=True) == (2 * size if method == "finetune" else 2 * biases)
    inputs = batch(2)
    torch.testing.assert_close(
        model.encode_questions(**inputs), model.encode_passages(**inputs)
    )  # same start
    out = model(inputs, batch(3, seed=5), torch.tensor([0, 1]))
    out.loss.backward()
    assert q.encoder.layer[0].output.dense.bias.grad.abs().sum() > 0
    assert c.encoder.layer[0].output.dense.bias.grad.abs().sum() > 0


# -- the evaluation's encoder interface (training/retrieval_eval.py) -------------------------------------------------
def test_bound_encode_methods_serve_the_evaluation():
    """`model.encode_passages` is an encode_fn: its owner is the whole model, so evaluation puts the SHARED backbone in
    eval mode (dropout off) and gives it back in train mode; the vectors are the model's own."""

    tokenizer = bert_tokenizer()
    torch.manual_seed(0)
    config = tiny_config("bert", vocab_size=len(tokenizer), hidden_dropout_prob=0.5)
    backbone = AutoModel.from_config(config, attn_implementation="sdpa")
    model = BiEncoder(backbone, retrieval_method_config(config, "prefix", P)).train()
    passages = [("Paris", "Paris is the capital of France."), ("Fox", "The quick brown fox.")]
    got = encode_texts(model.encode_passages, tokenizer, passages, batch_size=1, max_length=16)
    assert model.backbone.training and model.ctx_model.training  # modes given back
    model.eval()
    rows = tokenizer([t for t, _ in passages], [x for _, x in passages], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model.encode_passages(**rows).numpy()
    assert got.shape == (2, TINY_SIZES["hidden_size"])
    assert abs(got - expected).max() < 1e-5  # dropout 0.5 left on anywhere would move them
    # the cache key covers the shared backbone: another backbone weight, another fingerprint
    before = model_fingerprint(model)
    with torch.no_grad():
        model.backbone.embeddings.word_embeddings.weight[5, 0] += 1
    assert model_fingerprint(model) != before
