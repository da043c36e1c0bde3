"""Train an ensemble: one member per seed, AdamW, loss on answer positions only, per-member stopping.

Members are independent models that share kernels, not parameters: the loss is the sum of the
members' mean losses, so each member's gradient is that of its own loss. A member that reaches the
target accuracy stops updating (its weights at that step are kept), as does a member whose loss turns
non-finite or diverges (:func:`divergence_reason`; the reason is recorded); the ensemble ends when every
member has stopped or the step budget is spent.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from georecall.config import RunConfig, TrainConfig, resolve_device_name
from georecall.model import Transformer, param_counts
from georecall.results import TrainResult, TrainRun, run_meta
from georecall.tasks import QuerySet, context_length, make_queries, stack_queries, world_for
from georecall.training.evaluate import EvalResult, ScoreTally, answer_scores, evaluate
from georecall.training.fused_ce import mean_linear_cross_entropy

log = logging.getLogger(__name__)

BATCH_STREAM = 0xBA7C


@dataclass(frozen=True)
class Progress:
    """Passed to the progress callback after every step (``step`` = steps done so far)."""

    step: int
    total: int
    active: int  # members still training
    accuracy: list[float] | None  # latest evaluated accuracy per member (None between evaluations)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; a malformed or unavailable device raises ValueError."""
    resolve_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available")
    return dev


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The learning-rate multiplier at ``step``: linear warm-up, then cosine to ``min_lr_ratio`` or constant."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def divergence_reason(loss: float, step: int, initial: float, d_vocab: int, factor: float | None) -> str | None:
    """Why a member has diverged at an evaluation, or None: its loss exceeds ``factor`` times its reference,
    the larger of its own initial loss and ln V (the loss of a uniform guess over the V tokens).

    The floor ln V keeps a member that starts near zero loss (``init_from`` a trained run) from being flagged
    for ordinary noise; a member that starts above it (a frozen wide readout, new bijections) is measured
    against its own start. Measured (CPU, full batch): over about 4 700 stored runs of the experiments'
    smoke and quick recipes (threshold with its lr 1e-1 sensitivity, frozen_control, multihop,
    superposition, transfer, capacity, intervention; lr 1e-2 to 1e-1) no evaluated loss exceeded 1.11x
    its initial; at lr 1 it reaches 1.0-12x (accuracy 1-30 %), at lr 3 and 10 it reaches 97-3200x
    (N = 16-512, d = 8-32). The default factor 10 sits in that gap. Non-finite losses are left to the
    non-finite check.
    """
    if factor is None or not math.isfinite(loss) or not math.isfinite(initial):
        return None
    uniform = math.log(d_vocab)
    if loss <= factor * max(initial, uniform):
        return None
    return (f"diverged: loss {loss:.1f} at step {step}, above {factor:g}x max(its initial {initial:.2f}, "
            f"ln V {uniform:.2f})")


class _Batches:
    """Per-member minibatch indices: each member walks its own epoch permutations from its own seed."""

    def __init__(self, n_queries: int, batch_size: int, seeds: tuple[int, ...], device: torch.device) -> None:
        self.n, self.bs, self.device = n_queries, min(batch_size, n_queries), device
        self.gens = [torch.Generator().manual_seed(s * 1_000_003 + BATCH_STREAM) for s in seeds]
        self.perm = self._new_epoch()
        self.cursor = 0

    def _new_epoch(self) -> torch.Tensor:
        return torch.stack([torch.randperm(self.n, generator=g) for g in self.gens]).to(self.device)

    def next(self) -> torch.Tensor:  # [E, bs]
        if self.cursor + self.bs > self.n:
            self.perm, self.cursor = self._new_epoch(), 0
        idx = self.perm[:, self.cursor:self.cursor + self.bs]
        self.cursor += self.bs
        return idx


def _take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` [E, b] of a per-member tensor ``x`` [E, B, ...]."""
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand(*idx.shape, *x.shape[2:]))


def _use_fused(tc: TrainConfig, device: torch.device) -> bool:
    """Whether training uses the chunked readout + cross-entropy (``train.fused_loss``; None = where it pays,
    and always for a bf16 readout or opted-in Triton kernels)."""
    if tc.readout_dtype == "bfloat16" or tc.triton_kernels:
        return True
    if tc.fused_loss is not None:
        return tc.fused_loss
    return FUSED_BY_DEFAULT[device.type] if device.type in FUSED_BY_DEFAULT else False


#: Measured with benchmarks/train_throughput.py (see benchmarks/RESULTS.md).
FUSED_BY_DEFAULT = {"cpu": True, "cuda": False}


Body = Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor]


def _plain_scores(model: Transformer, positions: tuple[int, ...], body: Body):
    """Logits of the answer positions, then cross-entropy: ``(tokens, targets) -> correct, ce`` [E, B, P]
    and each member's mean loss [E] (differentiable). ``body`` is ``model.residual`` or its compiled form."""

    def scores(tokens: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = model.unembed_residual(body(tokens, positions))
        correct, ce = answer_scores(logits, targets)
        return correct, ce, ce.mean(dim=(1, 2))

    return scores


def _fused_scores(model: Transformer, positions: tuple[int, ...], body: Body, matmul_dtype: torch.dtype | None,
                  *, triton_kernels: bool = False):
    """The same scores through :func:`mean_linear_cross_entropy` (the readout's gradients computed in the
    forward pass), or, opted in with ``triton_kernels`` on CUDA, through the Triton kernels of
    :mod:`georecall.training.triton_ce`: the [E, B, P, V] logits never exist. ``matmul_dtype``
    (bf16 or None) is the readout matmuls' operand type. Opting in where the kernels cannot run (no
    CUDA, or triton not installed) raises ValueError, naming why."""

    triton_ce = None
    if triton_kernels:
        if model.W_U.device.type != "cuda":
            raise ValueError(f"train.triton_kernels needs a CUDA device, got {model.W_U.device}")
        from georecall.training import triton_ce  # imports triton (optional extra) only where it can run

        if not triton_ce.AVAILABLE:
            raise ValueError("train.triton_kernels needs triton: pip install -c constraints.txt -e \".[triton]\"")
    use_triton = triton_ce is not None

    def scores(tokens: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = model.ln_final(body(tokens, positions))  # [E, B, P, d]
        e, b, p, d = x.shape
        args = (x.reshape(e, b * p, d), model.W_U, model.unembed.b_U, targets.reshape(e, b * p))
        if use_triton:
            if matmul_dtype is not None:
                args = tuple(a.to(matmul_dtype) for a in args[:3]) + args[3:]
            ce, correct = triton_ce.triton_linear_cross_entropy(*args)
            mean = ce.mean(1)
            ce = ce.detach()
        else:
            mean, ce, correct = mean_linear_cross_entropy(*args, matmul_dtype=matmul_dtype)
        return correct.view(e, b, p), ce.view(e, b, p), mean

    return scores


def build_model(config: RunConfig, d_vocab: int) -> Transformer:
    """The ensemble for ``config``: member e initialised from ``config.seeds[e]``."""
    return Transformer(config.model, d_vocab=d_vocab, n_ctx=context_length(config.task),
                       n_members=len(config.seeds), seeds=config.seeds)


def matches(name: str, patterns: Sequence[str]) -> bool:
    """True when a parameter name matches one of the fnmatch ``patterns`` (``"blocks.*"``, ``"embed.W_E"``)."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@torch.no_grad()
def load_initial(model: Transformer, patterns: Sequence[str],
                 states: Sequence[Mapping[str, torch.Tensor]]) -> list[str]:
    """Copy the parameters matching ``patterns`` from one source state per member (tensors without the member
    axis, e.g. a one-member run's ``state_dict()`` rows); returns the names copied. A pattern that matches
    nothing, or a source of another shape, raises ValueError."""
    if len(states) != model.n_members:
        raise ValueError(f"need one source state per member ({model.n_members}), got {len(states)}")
    names = [n for n, _ in model.named_parameters() if matches(n, patterns)]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n, _ in model.named_parameters())]
    if unmatched:
        raise ValueError(f"init_params pattern(s) {unmatched} match no parameter of the model")
    params = dict(model.named_parameters())
    for e, state in enumerate(states):
        for name in names:
            if name not in state:
                raise ValueError(f"the source run has no parameter {name!r}")
            src = state[name]
            if tuple(src.shape) != tuple(params[name].shape[1:]):
                raise ValueError(f"source parameter {name!r} has shape {tuple(src.shape)}, the model needs "
                                 f"{tuple(params[name].shape[1:])}")
            params[name][e].copy_(src.to(params[name].dtype))
    return names


def apply_freeze(model: Transformer, patterns: Sequence[str]) -> list[str]:
    """Stop gradients of the parameters matching ``patterns`` (besides the config's frozen flags); returns them.
    A pattern that matches nothing raises ValueError (a typo must not train what it meant to freeze)."""
    named = list(model.named_parameters())
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n, _ in named)]
    if unmatched:
        raise ValueError(f"train.freeze pattern(s) {unmatched} match no parameter; names look like "
                         f"{', '.join(n for n, _ in named[:4])}, ...")
    frozen = [n for n, p in named if matches(n, patterns)]
    for n, p in named:
        if n in frozen:
            p.requires_grad_(False)
    return frozen


def train(config: RunConfig, *, progress: Callable[[Progress], None] | None = None,
          model: Transformer | None = None,
          init_states: Sequence[Mapping[str, torch.Tensor]] | None = None) -> TrainRun:
    """Train one ensemble (one member per seed) on its worlds' queries and return the live run.

    ``model`` may hand in an already built ensemble (e.g. with frozen parts set by hand); by default it
    is built from the config. A config with ``init_from`` needs ``init_states``: per member, the source
    run's parameters (the sweep reads them from its store); those matching ``config.init_params`` are
    copied in. ``train.freeze`` patterns then keep parameters at their starting values. Nothing is
    written to disk: see :func:`georecall.results.save_run`. A size whose estimate
    (:func:`georecall.training.memory.train_bytes`) exceeds this machine's memory raises ValueError before
    anything is allocated (in a sweep: that ensemble fails with the estimate and the sweep goes on).
    """
    from georecall.machine import check_fits
    from georecall.training.memory import train_bytes

    t0 = time.perf_counter()
    tc, seeds = config.train, config.seeds
    check_fits(train_bytes(config), f"training {len(seeds)} member(s) of {config.config_hash()[:12]}")
    device = resolve_device(tc.device)
    worlds = [world_for(config.task, s) for s in seeds]
    data: QuerySet = stack_queries([make_queries(w, config.task, seed=s) for w, s in zip(worlds, seeds, strict=True)])
    if data.sampled:
        log.info("query space N*K^k = %d exceeds the limit; training on a sample of %d", data.n_total, len(data))
    if model is None:
        model = build_model(config, worlds[0].vocab.d_vocab)
    if model.n_members != len(seeds):
        raise ValueError(f"model has {model.n_members} members but the config names {len(seeds)} seeds")
    if config.init_from is not None:
        if init_states is None:
            raise ValueError("the config starts from other runs (init_from); pass their parameters as init_states "
                             "(run it through a sweep, which reads them from its store)")
        load_initial(model, config.init_params, init_states)
    if tc.freeze:
        apply_freeze(model, tc.freeze)
    model = model.to(device)
    e, n_q = len(seeds), data.targets.shape[1]  # data is stacked: [E, B, ...]
    n_rel = config.task.n_relations
    tokens, targets, relations = data.tokens.to(device), data.targets.to(device), data.relations.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tc))
    # Per-member learning rates: an AdamW step (update and decoupled decay) is linear in lr, so a
    # member's step taken at train.lr and scaled by lr_e / train.lr is exactly its step at lr_e.
    lr_scale = None
    if config.lrs is not None and any(lr != tc.lr for lr in config.lrs):
        lr_scale = torch.tensor([lr / tc.lr for lr in config.lrs], device=device)
    body: Body = torch.compile(model.residual, dynamic=False) if tc.compile else model.residual
    if _use_fused(tc, device):
        mm = torch.bfloat16 if tc.readout_dtype == "bfloat16" else None
        score_fn = _fused_scores(model, data.positions, body, mm, triton_kernels=tc.triton_kernels)
    else:
        score_fn = _plain_scores(model, data.positions, body)
    approximate_scores = tc.readout_dtype != "float32"  # the training forward's scores are not exact
    batches = _Batches(n_q, tc.batch_size, seeds, device) if tc.batch_size is not None else None
    full_batch = batches is None or batches.bs == n_q

    active = torch.ones(e, dtype=torch.bool)
    steps_taken = [tc.steps] * e
    reasons = ["budget"] * e
    first_target: list[int | None] = [None] * e  # the step each member first reached the target
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    metrics: list[dict] = []
    last_acc: list[float] | None = None
    initial_loss: list[float] | None = None  # each member's loss at step 0 (divergence is measured against it)
    d_vocab = worlds[0].vocab.d_vocab

    def stop(member: int, step: int, reason: str) -> None:
        active[member] = False
        steps_taken[member], reasons[member] = step, reason
        snapshots[member] = {k: v[member].detach().clone() for k, v in model.state_dict().items()}

    def record(step: int, ev: EvalResult, members: list[int]) -> None:
        lr = opt.param_groups[0]["lr"]
        for m in members:
            metrics.append({"step": step, "member": m, "seed": seeds[m], "loss": ev.loss[m],
                            "accuracy": ev.accuracy[m], "per_relation": ev.per_relation[m],
                            "per_hop": ev.per_hop[m], "lr": lr})

    for step in range(tc.steps + 1):
        is_eval = step % tc.eval_every == 0 or step == tc.steps
        # Full batch: the training forward scores every query, so the check against the target is free
        # and exact at every step (with a bf16 readout, a float32 evaluation confirms it). Minibatch:
        # check at evaluation steps on the whole set.
        def reaching(acc: list[float]) -> list[int]:  # members reaching the target for the first time
            return [m for m in range(e) if active[m] and first_target[m] is None and acc[m] >= tc.target_accuracy]

        if full_batch:
            correct, ce, loss_e = score_fn(tokens, targets)  # [E, B, P], [E, B, P], [E]
            acc = correct.all(-1).float().mean(1).tolist()
            stopping = reaching(acc)
            if is_eval or stopping:  # the step a member first reaches the target is always in its metrics
                if approximate_scores:  # bf16 logits can round a near tie either way: score in float32
                    model.eval()
                    ev = evaluate(model, data, n_rel, chunk=tc.eval_chunk)
                    model.train()
                    acc = ev.accuracy
                    stopping = reaching(acc)
                else:
                    tally = ScoreTally(e, len(data.positions), n_rel, device)
                    tally.add(correct.detach(), ce.detach(), relations)
                    ev = tally.result()
                record(step, ev, [m for m in range(e) if active[m]] if is_eval else stopping)
            if is_eval:
                last_acc = acc
        else:
            if is_eval:
                model.eval()
                ev = evaluate(model, data, n_rel, chunk=tc.eval_chunk)
                model.train()
                acc = last_acc = ev.accuracy
                record(step, ev, [m for m in range(e) if active[m]])
            else:
                acc = None
        if acc is not None:
            for m in reaching(acc):
                first_target[m] = step
                if tc.stop_at_target:
                    stop(m, step, "target")
        if is_eval:  # the loss just recorded in the metrics, on every query
            if initial_loss is None:
                initial_loss = list(ev.loss)
            for m in range(e):
                why = divergence_reason(ev.loss[m], step, initial_loss[m], d_vocab, tc.divergence_factor)
                if active[m] and why is not None:
                    stop(m, step, why)
                    log.warning("member %d (seed %d): %s; it stops here", m, seeds[m], why)
        if not active.any() or step == tc.steps:
            break
        if not full_batch:
            idx = batches.next()
            _, _, loss_e = score_fn(_take(tokens, idx), _take(targets, idx))
        finite = torch.isfinite(loss_e.detach()).cpu()
        for m in range(e):
            if active[m] and not finite[m]:
                stop(m, step, f"non-finite loss at step {step}")
                log.warning("member %d (seed %d): non-finite loss at step %d; it stops here", m, seeds[m], step)
        if not active.any():
            break
        mask = active.to(device)
        # where() rather than a product: a stopped member's NaN must not leak into the sum.
        loss = torch.where(mask, loss_e, torch.zeros_like(loss_e)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if lr_scale is None:
            opt.step()
        else:
            with torch.no_grad():
                before = [p.detach().clone() for p in trainable]
            opt.step()
            with torch.no_grad():
                for p, p0 in zip(trainable, before, strict=True):
                    p.copy_(p0 + (p - p0) * lr_scale.view(-1, *([1] * (p.dim() - 1))))
        sched.step()
        if progress is not None:
            progress(Progress(step=step + 1, total=tc.steps, active=int(active.sum()),
                              accuracy=last_acc if is_eval else None))

    # Stopped members drifted (AdamW momentum) after they stopped: put back the weights they stopped with.
    with torch.no_grad():
        for name, p in model.state_dict().items():
            for m, snap in snapshots.items():
                p[m].copy_(snap[name])
    model.eval()
    final = evaluate(model, data, n_rel, chunk=tc.eval_chunk)
    wall = time.perf_counter() - t0
    result = TrainResult(accuracy=final.accuracy, steps=steps_taken, stop_reason=reasons, loss=final.loss,
                         first_target_step=first_target,
                         per_relation=final.per_relation, per_hop=final.per_hop, seeds=list(seeds),
                         n_queries=n_q, n_query_space=data.n_total, sampled=data.sampled,
                         n_params=param_counts(model), wall_time_s=wall, device=str(device))
    return TrainRun(config=config, result=result, model=model, worlds=worlds, metrics=metrics,
                    meta=run_meta(config, str(device), wall))
