"""Outside oracle: TransformerLens's HookedTransformer, loaded with our weights, gives our logits."""

import pytest
import torch

from georecall.config import ModelConfig
from georecall.model import Transformer, to_hooked_transformer

pytest.importorskip("transformer_lens", reason="needs the tl extra: pip install 'georecall[tl]'")


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(d_model=16, n_heads=2, d_mlp=32, layernorm=True),
        ModelConfig(d_model=16, n_heads=4, d_mlp=32, layernorm=False),
        ModelConfig(d_model=12, n_heads=2, d_head=4, n_layers=2, d_mlp=20, layernorm=False, attn_scale=1.0),
        ModelConfig(d_model=12, n_heads=3, n_layers=2, attn_only=True, layernorm=True),
        ModelConfig(d_model=8, d_mlp=16, tie_unembed=True, attn_bias=False),
    ],
    ids=["ln", "no-ln", "unscaled-2layer", "attn-only", "tied"],
)
def test_logits_equal_transformer_lens(cfg):
    model = Transformer(cfg, d_vocab=23, n_ctx=6, n_members=3, seeds=[0, 1, 2]).double()
    with torch.no_grad():  # non-trivial biases and LayerNorm gains, so every parameter matters
        for name, p in model.named_parameters():
            if not name.rsplit(".", 1)[-1].startswith("W_"):
                p.add_(0.1 * torch.randn_like(p))
    tokens = torch.randint(0, 23, (7, 6))
    ours = model(tokens)
    for member in range(3):
        tl = to_hooked_transformer(model, member)
        theirs = tl(tokens)
        torch.testing.assert_close(ours[member], theirs, rtol=1e-10, atol=1e-10)
    # The comparison can fail: another member's weights give other logits.
    assert not torch.allclose(ours[0], to_hooked_transformer(model, 1)(tokens))
