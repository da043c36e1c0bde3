"""The ensemble transformer: members are independent models, hooks are scoped, TL-compatible names."""

import pytest
import torch

from georecall.config import ModelConfig
from georecall.model import Transformer, param_counts

CFGS = [
    ModelConfig(d_model=16, n_heads=2, d_mlp=24),
    ModelConfig(d_model=12, n_heads=3, d_head=5, d_mlp=8, d_mlp2=6, layernorm=False, n_layers=2, attn_scale=1.0),
    ModelConfig(d_model=8, attn_only=True, tie_unembed=True, attn_bias=False),
]


def _loss(logits, targets):
    return torch.nn.functional.cross_entropy(logits.flatten(0, -2), targets.flatten(), reduction="sum")


@pytest.mark.parametrize("cfg", CFGS)
def test_ensemble_equals_separate_models_in_logits_and_gradients(cfg):
    torch.manual_seed(0)
    ens = Transformer(cfg, d_vocab=11, n_ctx=4, n_members=3, seeds=[5, 6, 7]).double()
    singles = [Transformer(cfg, d_vocab=11, n_ctx=4, seeds=[s]).double() for s in (5, 6, 7)]
    # Same seed, same member: initialisation does not depend on the ensemble around it.
    for e, single in enumerate(singles):
        for (name, p), q in zip(ens.named_parameters(), single.parameters(), strict=True):
            assert torch.equal(p[e], q[0]), name
    tokens = torch.randint(0, 11, (3, 5, 4))  # each member its own inputs
    targets = torch.randint(0, 11, (3, 5, 4))
    logits = ens(tokens)
    _loss(logits, targets).backward()
    for e, single in enumerate(singles):
        lg = single(tokens[e])
        torch.testing.assert_close(logits[e], lg[0], rtol=0, atol=1e-12)
        _loss(lg, targets[e:e + 1]).backward()
        for (name, p), q in zip(ens.named_parameters(), single.parameters(), strict=True):
            torch.testing.assert_close(p.grad[e], q.grad[0], rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize("cfg", CFGS)
@pytest.mark.parametrize("positions", [(3,), (1, 3), (0, 2)])
def test_residual_at_positions_equals_the_full_residual_there(cfg, positions):
    torch.manual_seed(1)
    model = Transformer(cfg, d_vocab=11, n_ctx=4, n_members=2).double()
    tokens = torch.randint(0, 11, (2, 6, 4))
    full = model.residual(tokens)[:, :, list(positions)]
    full.pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    part = model.residual(tokens, positions)
    torch.testing.assert_close(part, full, rtol=0, atol=1e-12)
    part.pow(2).sum().backward()
    assert grads.keys() == {n for n, p in model.named_parameters() if p.grad is not None}
    for n, g in grads.items():
        torch.testing.assert_close(model.get_parameter(n).grad, g, rtol=0, atol=1e-12, msg=n)


def test_member_and_stack_are_inverse():
    ens = Transformer(CFGS[0], d_vocab=9, n_ctx=3, n_members=4)
    again = Transformer.stack([ens.member(e) for e in range(4)])
    for (k, a), b in zip(ens.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    tokens = torch.randint(0, 9, (6, 3))
    torch.testing.assert_close(ens.member(2)(tokens)[0], ens(tokens)[2])


def test_transformer_lens_names_and_orientations():
    m = Transformer(ModelConfig(d_model=16, n_heads=2, d_mlp=24), d_vocab=10, n_ctx=5, n_members=2)
    sd = m.state_dict()
    assert sd["embed.W_E"].shape == (2, 10, 16)
    assert sd["pos_embed.W_pos"].shape == (2, 5, 16)
    assert sd["blocks.0.attn.W_Q"].shape == (2, 2, 16, 8)
    assert sd["blocks.0.attn.W_O"].shape == (2, 2, 8, 16)
    assert sd["blocks.0.mlp.W_in"].shape == (2, 16, 24)
    assert sd["blocks.0.mlp.W_out"].shape == (2, 24, 16)
    assert sd["unembed.W_U"].shape == (2, 16, 10)
    names = m.hook_names()
    for site in ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_pattern", "blocks.0.mlp.hook_post",
                 "blocks.0.hook_resid_post", "ln_final.hook_normalized"]:
        assert site in names
    assert names.index("blocks.0.hook_resid_pre") < names.index("blocks.0.attn.hook_q")  # forward order


def test_hook_context_removes_exactly_its_hooks_even_after_an_exception():
    m = Transformer(CFGS[0], d_vocab=10, n_ctx=3)
    tokens = torch.randint(0, 10, (4, 3))
    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        with m.hooks([("blocks.0.mlp.hook_post", lambda a, hook: seen.append(hook.name)),
                      ("blocks.0.hook_resid_post", lambda a, hook: seen.append(hook.name))]):
            assert m.attached_hooks() == {"blocks.0.mlp.hook_post": 1, "blocks.0.hook_resid_post": 1}
            m(tokens)
            raise RuntimeError("boom")
    assert seen == ["blocks.0.mlp.hook_post", "blocks.0.hook_resid_post"]
    assert m.attached_hooks() == {}
    # A hook attached outside (by a user, through the same context) survives an inner context's exit.
    with m.hooks([("hook_embed", lambda a, hook: None)]):
        with m.hooks([("hook_embed", lambda a, hook: None)]):
            assert m.attached_hooks() == {"hook_embed": 2}
        assert m.attached_hooks() == {"hook_embed": 1}
    assert m.attached_hooks() == {}
    with pytest.raises(ValueError, match="unknown hook site"), m.hooks([("blocks.9.nope", lambda a, h: None)]):
        pass
    assert m.attached_hooks() == {}


def test_hooks_patch_activations():
    m = Transformer(ModelConfig(d_model=8, d_mlp=16, layernorm=False), d_vocab=10, n_ctx=3)
    tokens = torch.randint(0, 10, (4, 3))
    base = m(tokens)
    with m.hooks([("blocks.0.hook_mlp_out", lambda a, hook: torch.zeros_like(a))]):
        no_mlp = m(tokens)
    _, cache = m.run_with_cache(tokens, ["blocks.0.hook_resid_mid"])
    expected = m.unembed_residual(cache["blocks.0.hook_resid_mid"])
    torch.testing.assert_close(no_mlp, expected)
    assert not torch.allclose(no_mlp, base)


def test_frozen_flags_and_param_counts():
    cfg = ModelConfig(d_model=8, d_mlp=16, frozen_embeddings=True, frozen_unembedding=True)
    m = Transformer(cfg, d_vocab=10, n_ctx=3)
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert frozen == {"embed.W_E", "pos_embed.W_pos", "unembed.W_U", "unembed.b_U"}
    c = param_counts(m)
    assert c["embedding"] == 80 and c["positional"] == 24 and c["unembedding"] == 90
    assert c["mlp"] == 8 * 16 + 16 + 16 * 8 + 8
    assert c["total"] == sum(v for k, v in c.items() if k != "total")


def test_bad_token_shapes_are_rejected():
    m = Transformer(CFGS[0], d_vocab=10, n_ctx=3, n_members=2)
    with pytest.raises(ValueError, match="tokens must be"):
        m(torch.zeros(3, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        m(torch.zeros(2, 4, dtype=torch.long))


def test_fused_layernorm_equals_the_hooked_path():
    model = Transformer(CFGS[0], d_vocab=11, n_ctx=4, n_members=2).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # gains and biases away from 1 and 0
    tokens = torch.randint(0, 11, (2, 5, 4))
    fused = model(tokens)
    seen = []
    with model.hooks([("blocks.0.ln2.hook_scale", lambda x, hook: seen.append(x.shape))]):
        hooked = model(tokens)
    assert seen == [(2, 5, 4, 1)]
    torch.testing.assert_close(fused, hooked, rtol=0, atol=1e-12)
