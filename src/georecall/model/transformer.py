"""The decoder-only transformer of docs/theory.md §1.2, with a leading ensemble axis on every parameter.

E independent models of one shape live in one module: every parameter has shape ``[E, ...]`` and
every operation is one batched kernel over the members. A single model is ``E = 1``; there is no
other code path. Members never interact: the loss is a sum over members, so each member's gradient
is the gradient of its own loss.

Names and orientations follow TransformerLens (``W_E[V, d]``, ``W_Q[H, d, d_head]``,
``W_O[H, d_head, d]``, ``W_in[d, d_mlp]``, ``W_U[d, V]``), with ``E`` in front. Hook sites
(``blocks.0.hook_resid_pre``, ``blocks.0.attn.hook_pattern``, ``blocks.0.mlp.hook_post``, …) are
listed by :meth:`Transformer.hook_names`; activations carry the ensemble axis first too.

Positions are 0-based and there is no BOS token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from georecall.config import ModelConfig
from georecall.model.hooks import HookFn, HookPoint

INIT_STREAM = 0x1A17
LN_EPS = 1e-5  # TransformerLens's default


def init_generator(seed: int) -> torch.Generator:
    """The CPU generator that initialises the member with this seed."""
    return torch.Generator().manual_seed(seed * 1_000_003 + INIT_STREAM)


class LayerNorm(nn.Module):
    """Pre-LayerNorm over d_model, per member: ``w[E, d]``, ``b[E, d]``."""

    def __init__(self, n_members: int, d_model: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(n_members, d_model))
        self.b = nn.Parameter(torch.zeros(n_members, d_model))
        self.hook_scale = HookPoint()  # [E, B, T, 1]
        self.hook_normalized = HookPoint()  # [E, B, T, d]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [E, B, T, d]
        w, b = self.w[:, None, None, :], self.b[:, None, None, :]
        if not (self.hook_scale.n_hooks or self.hook_normalized.n_hooks):
            # One fused kernel instead of nine passes; the per-member affine stays outside it.
            return torch.addcmul(b, F.layer_norm(x, x.shape[-1:], eps=LN_EPS), w)
        x = x - x.mean(-1, keepdim=True)
        scale = self.hook_scale((x.pow(2).mean(-1, keepdim=True) + LN_EPS).sqrt())
        x = x / scale
        return self.hook_normalized(x * w + b)


class Attention(nn.Module):
    """Causal multi-head softmax attention; scores are multiplied by ``cfg.scale``."""

    def __init__(self, cfg: ModelConfig, n_members: int) -> None:
        super().__init__()
        e, h, d, dh = n_members, cfg.n_heads, cfg.d_model, cfg.head_dim
        self.scale = cfg.scale
        self.W_Q = nn.Parameter(torch.empty(e, h, d, dh))
        self.W_K = nn.Parameter(torch.empty(e, h, d, dh))
        self.W_V = nn.Parameter(torch.empty(e, h, d, dh))
        self.W_O = nn.Parameter(torch.empty(e, h, dh, d))
        if cfg.attn_bias:
            self.b_Q = nn.Parameter(torch.zeros(e, h, dh))
            self.b_K = nn.Parameter(torch.zeros(e, h, dh))
            self.b_V = nn.Parameter(torch.zeros(e, h, dh))
            self.b_O = nn.Parameter(torch.zeros(e, d))
        else:
            self.b_Q = self.b_K = self.b_V = self.b_O = None
        self.hook_q = HookPoint()  # [E, B, T, H, dh]
        self.hook_k = HookPoint()  # [E, B, T, H, dh]
        self.hook_v = HookPoint()  # [E, B, T, H, dh]
        self.hook_attn_scores = HookPoint()  # [E, B, H, T_q, T_k], masked entries -inf
        self.hook_pattern = HookPoint()  # [E, B, H, T_q, T_k]
        self.hook_z = HookPoint()  # [E, B, T, H, dh]

    @staticmethod
    def _proj(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        out = torch.einsum("ebtd,ehdk->ebthk", x, w)  # [E, B, T, H, dh]
        return out if b is None else out + b[:, None, None]

    def forward(self, x: torch.Tensor, query_positions: Sequence[int] | None = None) -> torch.Tensor:
        """``x`` [E, B, T, d] -> ``[E, B, T, d]``, or ``[E, B, P, d]`` for the P ``query_positions`` only."""
        t = x.shape[2]
        xq, qpos = (x, torch.arange(t, device=x.device)) if query_positions is None else \
            (x[:, :, list(query_positions)], torch.tensor(list(query_positions), device=x.device))
        q = self.hook_q(self._proj(xq, self.W_Q, self.b_Q))
        k = self.hook_k(self._proj(x, self.W_K, self.b_K))
        v = self.hook_v(self._proj(x, self.W_V, self.b_V))
        scores = torch.einsum("ebqhk,ebthk->ebhqt", q, k) * self.scale  # [E, B, H, T_q, T]
        causal = torch.arange(t, device=x.device)[None, :] <= qpos[:, None]
        scores = self.hook_attn_scores(scores.masked_fill(~causal, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(torch.einsum("ebhqt,ebthk->ebqhk", pattern, v))  # [E, B, T_q, H, dh]
        out = torch.einsum("ebqhk,ehkd->ebqd", z, self.W_O)
        return out if self.b_O is None else out + self.b_O[:, None, None]


class MLP(nn.Module):
    """ReLU MLP with one hidden layer (``W_in``, ``W_out``) or two (plus ``W_hidden``)."""

    def __init__(self, cfg: ModelConfig, n_members: int) -> None:
        super().__init__()
        e, d, w1 = n_members, cfg.d_model, cfg.d_mlp
        self.W_in = nn.Parameter(torch.empty(e, d, w1))
        self.b_in = nn.Parameter(torch.zeros(e, w1))
        self.hook_pre = HookPoint()  # [E, B, T, d_mlp]
        self.hook_post = HookPoint()  # [E, B, T, d_mlp]
        w_last = w1
        if cfg.d_mlp2 is not None:
            self.W_hidden = nn.Parameter(torch.empty(e, w1, cfg.d_mlp2))
            self.b_hidden = nn.Parameter(torch.zeros(e, cfg.d_mlp2))
            self.hook_pre2 = HookPoint()  # [E, B, T, d_mlp2]
            self.hook_post2 = HookPoint()  # [E, B, T, d_mlp2]
            w_last = cfg.d_mlp2
        else:
            self.W_hidden = None
        self.W_out = nn.Parameter(torch.empty(e, w_last, d))
        self.b_out = nn.Parameter(torch.zeros(e, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [E, B, T, d]
        pre = self.hook_pre(torch.einsum("ebtd,edw->ebtw", x, self.W_in) + self.b_in[:, None, None])
        h = self.hook_post(F.relu(pre))
        if self.W_hidden is not None:
            pre2 = self.hook_pre2(torch.einsum("ebtw,ewv->ebtv", h, self.W_hidden) + self.b_hidden[:, None, None])
            h = self.hook_post2(F.relu(pre2))
        return torch.einsum("ebtw,ewd->ebtd", h, self.W_out) + self.b_out[:, None, None]


class Block(nn.Module):
    """Pre-LN residual block: ``x + attn(ln1(x))``, then ``+ mlp(ln2(x))`` unless attention-only."""

    def __init__(self, cfg: ModelConfig, n_members: int) -> None:
        super().__init__()
        norm = (lambda: LayerNorm(n_members, cfg.d_model)) if cfg.layernorm else nn.Identity
        # Registration order is forward order, so hook_names() lists sites as the forward meets them.
        self.hook_resid_pre = HookPoint()
        self.ln1 = norm()
        self.attn = Attention(cfg, n_members)
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.ln2 = None if cfg.attn_only else norm()
        self.mlp = None if cfg.attn_only else MLP(cfg, n_members)
        self.hook_mlp_out = None if cfg.attn_only else HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: torch.Tensor, query_positions: Sequence[int] | None = None) -> torch.Tensor:
        """``[E, B, T, d]`` -> ``[E, B, T, d]``; with ``query_positions`` only those P positions are
        computed past attention's keys and values (``[E, B, P, d]``; hooks after ``hook_k``/``hook_v`` see P)."""
        x = self.hook_resid_pre(x)
        resid = x if query_positions is None else x[:, :, list(query_positions)]
        x = self.hook_resid_mid(resid + self.hook_attn_out(self.attn(self.ln1(x), query_positions)))
        if self.mlp is not None:
            x = x + self.hook_mlp_out(self.mlp(self.ln2(x)))
        return self.hook_resid_post(x)


class Transformer(nn.Module):
    """An ensemble of ``n_members`` decoder-only transformers of one shape.

    ``forward(tokens)`` takes tokens ``[B, T]`` (the same inputs for every member) or ``[E, B, T]``
    and returns logits ``[E, B, T, d_vocab]``; with ``positions`` only those positions are unembedded
    (``[E, B, len(positions), d_vocab]``), which is what training and evaluation need.
    """

    def __init__(self, cfg: ModelConfig, *, d_vocab: int, n_ctx: int, n_members: int = 1,
                 seeds: Sequence[int] | None = None) -> None:
        super().__init__()
        if d_vocab < 1 or n_ctx < 1 or n_members < 1:
            raise ValueError(f"d_vocab, n_ctx and n_members must be >= 1, got {d_vocab}, {n_ctx}, {n_members}")
        self.cfg = cfg
        self.d_vocab, self.n_ctx, self.n_members = d_vocab, n_ctx, n_members
        e, d = n_members, cfg.d_model
        self.embed = nn.Module()
        self.embed.W_E = nn.Parameter(torch.empty(e, d_vocab, d))
        self.pos_embed = nn.Module()
        self.pos_embed.W_pos = nn.Parameter(torch.empty(e, n_ctx, d))
        self.hook_embed = HookPoint()  # [E, B, T, d]
        self.hook_pos_embed = HookPoint()  # [E, B, T, d]
        self.blocks = nn.ModuleList(Block(cfg, n_members) for _ in range(cfg.n_layers))
        self.ln_final = LayerNorm(n_members, d) if cfg.layernorm else nn.Identity()
        self.unembed = nn.Module()
        if not cfg.tie_unembed:
            self.unembed.W_U = nn.Parameter(torch.empty(e, d, d_vocab))
        self.unembed.b_U = nn.Parameter(torch.zeros(e, d_vocab))
        self._hook_points: dict[str, HookPoint] = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self._hook_points[name] = module
        self.reset_parameters(range(n_members) if seeds is None else seeds)

    # ----------------------------------------------------------------------------------------------
    # Parameters

    @property
    def W_U(self) -> torch.Tensor:
        """The readout ``[E, d, V]`` (``W_E`` transposed when tied)."""
        return self.embed.W_E.transpose(1, 2) if self.cfg.tie_unembed else self.unembed.W_U

    @torch.no_grad()
    def reset_parameters(self, seeds: Sequence[int]) -> None:
        """Initialise member e from ``seeds[e]`` alone: the same seed gives the same member in any ensemble.

        Matrices are normal (``embed_init_std`` for ``W_E``/``W_pos``, ``unembed_init_std`` for ``W_U``,
        ``init_std`` otherwise), biases 0,
        LayerNorm gains 1.
        """
        seeds = list(seeds)
        if len(seeds) != self.n_members:
            raise ValueError(f"need one seed per member ({self.n_members}), got {len(seeds)}")
        for e, seed in enumerate(seeds):
            gen = init_generator(seed)
            for name, p in self.named_parameters():  # fixed order: the state-dict order
                leaf = name.rsplit(".", 1)[-1]
                if leaf.startswith("W_"):
                    std = self.cfg.embed_init_std if leaf in ("W_E", "W_pos") else self.cfg.init_std
                    if leaf == "W_U" and self.cfg.unembed_init_std is not None:
                        std = self.cfg.unembed_init_std
                    p[e].copy_(torch.randn(p.shape[1:], generator=gen) * std)
                else:  # biases start at 0, LayerNorm gains at 1
                    p[e].fill_(1.0 if leaf == "w" else 0.0)
        self.apply_freezing()

    def apply_freezing(self) -> None:
        """Set ``requires_grad`` from the config's frozen flags."""
        frozen = set()
        if self.cfg.frozen_embeddings:
            frozen |= {"embed.W_E", "pos_embed.W_pos"}
        if self.cfg.frozen_unembedding:
            frozen |= {"unembed.W_U", "unembed.b_U"}
        for name, p in self.named_parameters():
            p.requires_grad_(name not in frozen)

    def member(self, e: int) -> Transformer:
        """A standalone copy (E = 1) of member e."""
        one = Transformer(self.cfg, d_vocab=self.d_vocab, n_ctx=self.n_ctx, n_members=1)
        one.load_state_dict({k: v[e:e + 1].clone() for k, v in self.state_dict().items()})
        return one.to(self.embed.W_E.device)

    @classmethod
    def stack(cls, models: Sequence[Transformer]) -> Transformer:
        """One ensemble holding the members of ``models`` (all of one shape), in order."""
        first = models[0]
        if any((m.cfg, m.d_vocab, m.n_ctx) != (first.cfg, first.d_vocab, first.n_ctx) for m in models):
            raise ValueError("models of different shapes cannot be stacked")
        out = cls(first.cfg, d_vocab=first.d_vocab, n_ctx=first.n_ctx, n_members=sum(m.n_members for m in models))
        states = [m.state_dict() for m in models]
        out.load_state_dict({k: torch.cat([s[k] for s in states]) for k in states[0]})
        return out.to(first.embed.W_E.device)

    # ----------------------------------------------------------------------------------------------
    # Forward

    def residual(self, tokens: torch.Tensor, positions: Sequence[int] | None = None) -> torch.Tensor:
        """The final residual stream before ``ln_final``: ``[E, B, T, d]``, or ``[E, B, P, d]`` at ``positions``.

        With ``positions`` the last block computes its queries, MLP and output at those positions only
        (what a loss on answer positions needs; earlier blocks still compute every position), so hooks
        of the last block see P positions. :meth:`forward` computes every position.
        """
        e = self.n_members
        if tokens.dim() == 2:
            tokens = tokens.expand(e, *tokens.shape)
        if tokens.dim() != 3 or tokens.shape[0] != e:
            raise ValueError(f"tokens must be [B, T] or [{e}, B, T], got {tuple(tokens.shape)}")
        t = tokens.shape[-1]
        if t > self.n_ctx:
            raise ValueError(f"sequence length {t} exceeds n_ctx={self.n_ctx}")
        # Member e's token v is row e*V + v of the flattened embedding table.
        offsets = torch.arange(e, device=tokens.device)[:, None, None] * self.d_vocab
        flat = self.embed.W_E.reshape(e * self.d_vocab, -1)
        x = self.hook_embed(F.embedding(tokens + offsets, flat))  # [E, B, T, d]
        x = x + self.hook_pos_embed(self.pos_embed.W_pos[:, None, :t, :].expand_as(x))
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, positions if i == last else None)
        return x

    def unembed_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``ln_final`` then logits: ``[E, B, P, d] -> [E, B, P, V]``."""
        x = self.ln_final(x)
        return torch.einsum("ebpd,edv->ebpv", x, self.W_U) + self.unembed.b_U[:, None, None]

    def forward(self, tokens: torch.Tensor, positions: Sequence[int] | None = None) -> torch.Tensor:
        x = self.residual(tokens)
        if positions is not None:
            x = x[:, :, list(positions)]
        return self.unembed_residual(x)

    # ----------------------------------------------------------------------------------------------
    # Hooks

    def hook_names(self) -> list[str]:
        """Every hook site, in forward order."""
        return list(self._hook_points)

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Sequence[tuple[str, HookFn]]) -> Iterator[Transformer]:
        """Attach ``(hook_name, fn)`` pairs for the body of a ``with``; exactly these are removed on exit.

        ``fn(activation, hook)`` may return a tensor to replace the activation (patching).
        """
        handles = []
        try:
            for name, fn in fwd_hooks:
                if name not in self._hook_points:
                    raise ValueError(f"unknown hook site {name!r}; see Transformer.hook_names()")
                handles.append(self._hook_points[name].add_hook(fn))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def attached_hooks(self) -> dict[str, int]:
        """Hook sites that currently hold hooks, with how many each."""
        return {name: hp.n_hooks for name, hp in self._hook_points.items() if hp.n_hooks}

    def run_with_cache(self, tokens: torch.Tensor, names: Sequence[str] | None = None,
                       positions: Sequence[int] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and the activations at ``names`` (all sites by default), detached."""
        cache: dict[str, torch.Tensor] = {}

        def save(act: torch.Tensor, hook: HookPoint) -> None:
            cache[hook.name] = act.detach()

        with self.hooks([(n, save) for n in (self.hook_names() if names is None else names)]):
            logits = self(tokens, positions)
        return logits, cache


def param_counts(model: Transformer) -> dict[str, int]:
    """Parameters of one member, split into embedding / positional / attention / mlp / layernorm / unembedding."""
    groups = {"embedding": 0, "positional": 0, "attention": 0, "mlp": 0, "layernorm": 0, "unembedding": 0}
    for name, p in model.named_parameters():
        n = p[0].numel()
        if name.startswith("embed."):
            groups["embedding"] += n
        elif name.startswith("pos_embed."):
            groups["positional"] += n
        elif ".attn." in name:
            groups["attention"] += n
        elif ".mlp." in name:
            groups["mlp"] += n
        elif ".ln" in name or name.startswith("ln_final"):
            groups["layernorm"] += n
        else:
            groups["unembedding"] += n
    groups["total"] = sum(groups.values())
    return groups
