"""Training throughput: georecall's ensembles against the per-model loop a researcher would write.

    python benchmarks/train_throughput.py --quick          # E in {1, 32}, launch-bound config, CPU
    python benchmarks/train_throughput.py --device cuda --json

Baseline (written here, not georecall's code): one ``nn.Module`` and one AdamW per model, trained
one after the other, full batch, single hop, one layer. Against it georecall's ensemble at several
E on two configs: launch-bound (N=1024, K=4, d=16) and logits-bound (N=4096, K=8, d=32). Prints
model·steps/s, the ratio to the baseline measured in the same run, achieved TFLOP/s from a FLOP
count of the model (forward + backward = 3 × forward matmul FLOPs; recomputation not counted), peak
memory, and the accuracy both reach after the same number of steps (they must agree).

``--compile`` adds rows with ``train.compile`` on (compile time included, as a user pays it).
Nothing here changes allocator settings: a ``mallopt`` call, even one undone later, turns off glibc's
dynamic mmap threshold for the rest of the process and would slow the baseline measured after it.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

from georecall.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from georecall.tasks import make_queries, world_for
from georecall.training import train

CONFIGS = {
    "launch-bound": dict(n_subjects=1024, n_relations=4, d_model=16),
    "logits-bound": dict(n_subjects=4096, n_relations=8, d_model=32),
}


class PlainTransformer(nn.Module):
    """One pre-LN layer (attention + ReLU MLP), learned token/position embeddings, untied readout."""

    def __init__(self, vocab: int, n_ctx: int, d: int, d_mlp: int, n_heads: int = 1) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(n_ctx, d)
        self.ln1, self.ln2, self.lnf = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, d_mlp), nn.ReLU(), nn.Linear(d_mlp, d))
        self.unembed = nn.Linear(d, vocab)
        self.n_heads = n_heads

    def forward(self, tokens: torch.Tensor, position: int) -> torch.Tensor:  # [B, T] -> [B, V]
        b, t = tokens.shape
        x = self.tok(tokens) + self.pos(torch.arange(t, device=tokens.device))
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, -1)
        x = x + self.out(a)
        x = x + self.mlp(self.ln2(x))
        return self.unembed(self.lnf(x[:, position]))


def model_flops(n_queries: int, n_ctx: int, d: int, d_mlp: int, vocab: int) -> float:
    """Matmul FLOPs of one training step (forward + backward ~ 3x forward) of one model, full batch."""
    tokens = n_queries * n_ctx
    fwd = 2 * tokens * d * (3 * d + d + 2 * d_mlp) + 4 * n_queries * n_ctx * n_ctx * d  # layer
    fwd += 2 * n_queries * d * vocab  # readout at the answer position
    return 3.0 * fwd


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _peak_gb(dev: torch.device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def per_model_loop(cfg: dict, n_models: int, steps: int, dev: torch.device, lr: float) -> tuple[float, list[float]]:
    """Seconds for ``steps`` steps of each of ``n_models`` models trained one after the other, and accuracies."""
    task = TaskConfig(n_subjects=cfg["n_subjects"], n_relations=cfg["n_relations"])
    accs, elapsed = [], 0.0
    for seed in range(n_models):
        q = make_queries(world_for(task, seed), task)
        tokens, targets = q.tokens.to(dev), q.targets[:, 0].to(dev)
        torch.manual_seed(seed)
        model = PlainTransformer(task.n_subjects + task.n_relations, q.n_ctx, cfg["d_model"],
                                 4 * cfg["d_model"]).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(model(tokens, q.positions[0]), targets)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(dev)
        elapsed += time.perf_counter() - t0
        with torch.no_grad():
            accs.append(float((model(tokens, q.positions[0]).argmax(-1) == targets).float().mean()))
    return elapsed, accs


def ensemble(cfg: dict, n_models: int, steps: int, dev: torch.device, lr: float,
             fused: bool | None = None, compile: bool = False,
             readout_dtype: str = "float32") -> tuple[float, list[float]]:
    """Seconds for ``steps`` steps of one georecall ensemble of ``n_models``, and accuracies."""
    run_cfg = RunConfig(task=TaskConfig(n_subjects=cfg["n_subjects"], n_relations=cfg["n_relations"]),
                        model=ModelConfig(d_model=cfg["d_model"], d_mlp=4 * cfg["d_model"]),
                        train=TrainConfig(steps=steps, lr=lr, warmup_steps=0, schedule="constant",
                                          eval_every=10**9, target_accuracy=1.0, device=str(dev),
                                          fused_loss=fused, compile=compile, readout_dtype=readout_dtype),
                        seeds=tuple(range(n_models)))
    _sync(dev)
    t0 = time.perf_counter()
    run = train(run_cfg)
    _sync(dev)
    return time.perf_counter() - t0, run.result.accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="E in {1, 32} on the launch-bound config only")
    ap.add_argument("--ensembles", default="1,8,32,128,512", help="comma-separated E values")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated configs (--quick: launch-bound)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per model")
    ap.add_argument("--baseline-models", type=int, default=4, help="models timed in the per-model loop")
    ap.add_argument("--check-steps", type=int, default=400,
                    help="steps of the accuracy check (4 models each way, launch-bound config); 0 skips it")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--fused", choices=["auto", "on", "off"], default="auto",
                    help="the ensemble's loss path: chunked readout + cross-entropy, plain, or the default")
    ap.add_argument("--compile", action="store_true", help="also time the ensembles with train.compile on")
    ap.add_argument("--readout-dtype", choices=["float32", "bfloat16"], default="float32",
                    help="the ensembles' train.readout_dtype (bfloat16 implies the fused loss path)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    dev = torch.device(args.device)
    fused = {"auto": None, "on": True, "off": False}[args.fused]
    sizes = [1, 32] if args.quick else [int(s) for s in args.ensembles.split(",")]
    configs = ["launch-bound"] if args.quick else args.configs.split(",")
    if unknown := set(configs) - set(CONFIGS):
        ap.error(f"unknown config(s) {sorted(unknown)}; choose from {list(CONFIGS)}")
    rows = []
    for name in configs:
        cfg = CONFIGS[name]
        vocab = cfg["n_subjects"] + cfg["n_relations"]
        flops = model_flops(cfg["n_subjects"] * cfg["n_relations"], 2, cfg["d_model"], 4 * cfg["d_model"], vocab)
        ensemble(cfg, 1, 2, dev, args.lr)  # warm-up: allocator, kernels, thread pools
        secs, accs = per_model_loop(cfg, args.baseline_models, args.steps, dev, args.lr)
        base = args.baseline_models * args.steps / secs
        rows.append({"config": name, "impl": "per-model", "E": 1, "model_steps_per_s": base, "ratio": 1.0,
                     "tflops": base * flops / 1e12, "peak_mem_gb": _peak_gb(dev), "accuracy": accs})
        for e in sizes:
            for compiled in (False, True) if args.compile else (False,):
                try:
                    if dev.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(dev)
                    secs, accs = ensemble(cfg, e, args.steps, dev, args.lr, fused, compiled, args.readout_dtype)
                except torch.OutOfMemoryError:
                    rows.append({"config": name, "impl": "ensemble", "E": e, "compile": compiled,
                                 "error": "out of memory"})
                    continue
                rate = e * args.steps / secs
                rows.append({"config": name, "impl": "ensemble", "E": e, "fused_loss": args.fused, "compile": compiled,
                             "readout_dtype": args.readout_dtype,
                             "model_steps_per_s": rate, "ratio": rate / base, "tflops": rate * flops / 1e12,
                             "peak_mem_gb": _peak_gb(dev), "accuracy": accs})
    check = None
    if args.check_steps:
        _, base_acc = per_model_loop(CONFIGS["launch-bound"], 4, args.check_steps, dev, args.lr)
        _, ens_acc = ensemble(CONFIGS["launch-bound"], 4, args.check_steps, dev, args.lr, fused,
                              readout_dtype=args.readout_dtype)
        check = {"steps": args.check_steps, "per_model": base_acc, "ensemble": ens_acc}
        rows[0]["accuracy_check"] = check  # the launch-bound per-model row carries the same-steps check
    if args.json:
        print(json.dumps(rows))
        return
    print(f"device {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else
                             f" ({torch.get_num_threads()} threads)") + f", {args.steps} steps per model")
    print(f"{'config':<14}{'impl':<20}{'E':>5}{'model·steps/s':>15}{'ratio':>8}{'TFLOP/s':>9}{'peak GB':>9}  accuracy")
    for r in rows:
        impl = r["impl"] + (" +compile" if r.get("compile") else "")
        if "error" in r:
            print(f"{r['config']:<14}{impl:<20}{r['E']:>5}  {r['error']}")
            continue
        acc = r["accuracy"]
        print(f"{r['config']:<14}{impl:<20}{r['E']:>5}{r['model_steps_per_s']:>15.1f}{r['ratio']:>8.2f}"
              f"{r['tflops']:>9.3f}{r['peak_mem_gb']:>9.2f}  mean {sum(acc) / len(acc):.3f}")
    if check:
        print(f"accuracy after {check['steps']} steps (launch-bound, 4 models): per-model loop "
              f"{[round(a, 3) for a in check['per_model']]}, ensemble {[round(a, 3) for a in check['ensemble']]}")


if __name__ == "__main__":
    main()
