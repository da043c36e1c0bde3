"""Frozen, validated configs for tasks, models and training, with JSON round-trip and a stable hash.

Every check a user can trip raises ``ValueError`` naming the field and the offending value; the CLI
turns those into one-line errors. Variants are made with :func:`dataclasses.replace` (which re-runs
the checks) or with :func:`apply_overrides` (``"model.d_mlp=64"`` strings, checked by name and type).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union

CotFormat = Literal["none", "interleaved", "question_first"]
AttributeKind = Literal["shared", "disjoint"]
Schedule = Literal["cosine", "constant"]
ReadoutDtype = Literal["float32", "bfloat16"]
CotLoss = Literal["chain", "final"]

#: Default cap on the number of queries materialised at once (tokens + targets stay well under 1 GB).
DEFAULT_MAX_QUERIES = 1 << 21
#: The longest chain georecall takes (trained, constructed or bounded): K^k beyond it leaves floating point
#: (K >= 2), and an unbounded k would make exact counts such as N*K^k themselves take unbounded time.
MAX_HOPS = 1000


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


@dataclass(frozen=True)
class TaskConfig:
    """Which world of facts and which query format (docs/theory.md §1.1)."""

    n_subjects: int = 512  # N: subjects, also the attributes in the shared setting
    n_relations: int = 4  # K: relations, each a map of the subjects
    n_hops: int = 1  # k: relations per chain; r_1 is applied first
    cot: CotFormat = "none"  # chain-of-thought format: none, interleaved (A) or question_first (B)
    attributes: AttributeKind = "shared"  # shared: attributes are subjects; disjoint: own tokens per relation
    n_attributes: int | None = None  # disjoint only: attribute tokens per relation (None = N)
    bijective: bool = True  # disjoint only: False draws arbitrary functions instead of bijections
    world_seed: int | None = None  # None: each ensemble member draws its own world from its seed
    world_variant: int = 0  # 0: the seed's world; v > 0: another world of the same seed (new bijections, for transfer)
    # CoT only: the loss on every emitted subject ("chain") or on the final answer alone ("final": a control
    # without intermediate supervision; the intermediate subjects are still teacher-forced inputs)
    cot_loss: CotLoss = "chain"
    n_queries: int | None = None  # None: all N*K^k queries if they fit max_queries, else a sample of that size
    max_queries: int = DEFAULT_MAX_QUERIES  # memory limit on materialised queries

    def __post_init__(self) -> None:
        _check(self.n_subjects >= 2, f"n_subjects must be >= 2, got {self.n_subjects}")
        _check(self.n_relations >= 1, f"n_relations must be >= 1, got {self.n_relations}")
        _check(1 <= self.n_hops <= MAX_HOPS, f"n_hops must be in [1, {MAX_HOPS}], got {self.n_hops}")
        _check(self.cot in typing.get_args(CotFormat), f"cot must be one of {typing.get_args(CotFormat)}, "
               f"got {self.cot!r}")
        _check(self.attributes in typing.get_args(AttributeKind),
               f"attributes must be one of {typing.get_args(AttributeKind)}, got {self.attributes!r}")
        _check(self.max_queries >= 1, f"max_queries must be >= 1, got {self.max_queries}")
        _check(self.world_variant >= 0, f"world_variant must be >= 0, got {self.world_variant}")
        _check(self.cot_loss in typing.get_args(CotLoss),
               f"cot_loss must be one of {typing.get_args(CotLoss)}, got {self.cot_loss!r}")
        _check(self.cot_loss == "chain" or self.cot != "none",
               f"cot_loss={self.cot_loss!r} needs a CoT format (a direct query has one answer), got cot='none'")
        if self.attributes == "disjoint":
            # Attribute tokens of a relation are not subjects, so a chain cannot continue after one hop.
            _check(self.n_hops == 1 and self.cot == "none",
                   "disjoint attributes support single-hop queries only (n_hops=1, cot='none'), "
                   f"got n_hops={self.n_hops}, cot={self.cot!r}")
            n_attr = self.n_subjects if self.n_attributes is None else self.n_attributes
            _check(n_attr >= 1, f"n_attributes must be >= 1, got {n_attr}")
            if self.bijective:
                _check(n_attr == self.n_subjects,
                       f"bijective relations need n_attributes == n_subjects ({self.n_subjects}), got {n_attr}")
        else:
            _check(self.n_attributes is None, "n_attributes applies to disjoint attributes only")
            _check(self.bijective, "shared attributes are always bijections (bijective=False needs "
                   "attributes='disjoint')")
        if self.n_queries is not None:
            _check(self.n_queries >= 1, f"n_queries must be >= 1, got {self.n_queries}")

    @property
    def attributes_per_relation(self) -> int:
        """Size of each relation's codomain (N in the shared setting)."""
        return self.n_subjects if self.n_attributes is None else self.n_attributes


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the decoder-only transformer (docs/theory.md §1.2); vocabulary and context come from the task."""

    d_model: int = 32  # residual width d
    n_layers: int = 1  # transformer blocks
    n_heads: int = 1  # attention heads per block
    d_head: int | None = None  # per-head width; None = d_model // n_heads (then n_heads must divide d_model)
    d_mlp: int = 128  # width of the (first) hidden MLP layer
    d_mlp2: int | None = None  # width of a second hidden layer ("3-layer MLP"); None = one hidden layer
    attn_only: bool = False  # blocks without MLP
    layernorm: bool = True  # pre-LayerNorm before attention, MLP and unembedding
    attn_bias: bool = True  # biases b_Q, b_K, b_V, b_O (the constructions set them to zero)
    attn_scale: float | None = None  # scores multiplied by this; None = 1/sqrt(d_head), 1.0 = unscaled
    tie_unembed: bool = False  # logits = resid @ W_E^T (no W_U); b_U is kept
    frozen_embeddings: bool = False  # W_E and W_pos stay at their random init
    frozen_unembedding: bool = False  # W_U and b_U stay at their random init (fact-independent readout)
    init_std: float = 0.02  # std of the normal init of every matrix (biases start at 0, LN at 1/0)
    embed_init_std: float = 1.0  # std of W_E and W_pos at init; frozen embeddings keep this scale
    unembed_init_std: float | None = None  # std of W_U at init (None = init_std); a frozen readout keeps it

    def __post_init__(self) -> None:
        _check(self.d_model >= 1, f"d_model must be >= 1, got {self.d_model}")
        _check(self.n_layers >= 1, f"n_layers must be >= 1, got {self.n_layers}")
        _check(self.n_heads >= 1, f"n_heads must be >= 1, got {self.n_heads}")
        if self.d_head is None:
            _check(self.d_model % self.n_heads == 0,
                   f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads}), "
                   "or set d_head explicitly")
        else:
            _check(self.d_head >= 1, f"d_head must be >= 1, got {self.d_head}")
        _check(self.d_mlp >= 1, f"d_mlp must be >= 1, got {self.d_mlp}")
        _check(self.d_mlp2 is None or self.d_mlp2 >= 1, f"d_mlp2 must be >= 1 or None, got {self.d_mlp2}")
        _check(self.attn_scale is None or self.attn_scale > 0, f"attn_scale must be > 0, got {self.attn_scale}")
        _check(self.init_std > 0, f"init_std must be > 0, got {self.init_std}")
        _check(self.embed_init_std > 0, f"embed_init_std must be > 0, got {self.embed_init_std}")
        _check(self.unembed_init_std is None or self.unembed_init_std > 0,
               f"unembed_init_std must be > 0, got {self.unembed_init_std}")
        _check(not (self.tie_unembed and self.frozen_unembedding and not self.frozen_embeddings),
               "a tied unembedding is W_E: freeze it with frozen_embeddings")

    @property
    def head_dim(self) -> int:
        """The per-head width actually used."""
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    @property
    def scale(self) -> float:
        """The factor the attention scores are multiplied by."""
        return self.attn_scale if self.attn_scale is not None else self.head_dim ** -0.5


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: AdamW, warm-up then cosine or constant, full batch or minibatches."""

    steps: int = 3000  # step budget per ensemble
    lr: float = 1e-2  # peak learning rate
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    betas: tuple[float, float] = (0.9, 0.98)  # AdamW betas
    warmup_steps: int = 50  # linear warm-up from 0 to lr
    schedule: Schedule = "cosine"  # after warm-up: cosine decay to min_lr_ratio*lr, or constant
    min_lr_ratio: float = 0.1  # floor of the cosine schedule, relative to lr
    batch_size: int | None = None  # queries per step and member; None = full batch
    eval_every: int = 100  # steps between evaluations (step 0 and the last step are always evaluated)
    target_accuracy: float = 1.0  # a member stops updating once its accuracy reaches this
    device: str = "auto"  # auto (CUDA if available), cpu, cuda, cuda:N
    eval_chunk: int = 1 << 15  # queries per evaluation chunk (bounds memory)
    fused_loss: bool | None = None  # chunked readout + cross-entropy; None = where measured to pay
    # Opt-in: the fused loss on CUDA through georecall's Triton kernels (the `triton` extra). Off by default
    # until they have passed on a real GPU (tests/gpu); off, CUDA runs the chunked torch path.
    triton_kernels: bool = False
    compile: bool = False  # torch.compile the model body (pays only for long runs: benchmarks/RESULTS.md)
    readout_dtype: ReadoutDtype = "float32"  # bfloat16: readout matmuls in bf16, float32 softmax and sums
    stop_at_target: bool = True  # False: members train the whole budget (the step they first reach the target is kept)
    freeze: tuple[str, ...] = ()  # parameter-name patterns (fnmatch, e.g. "blocks.*") kept at their initial values
    # A member whose loss at an evaluation exceeds this multiple of max(its initial loss, ln V) -- ln V being
    # the loss of a uniform guess -- has diverged and stops with that reason (None: never). Healthy runs stay
    # below 1.11x, diverging ones (lr >= 3) pass 90x: see georecall.training.loop.divergence_reason.
    divergence_factor: float | None = 10.0

    def __post_init__(self) -> None:
        _check(self.steps >= 0, f"steps must be >= 0, got {self.steps}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
               f"betas must be two numbers in [0, 1), got {self.betas}")
        _check(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        _check(self.schedule in typing.get_args(Schedule),
               f"schedule must be one of {typing.get_args(Schedule)}, got {self.schedule!r}")
        _check(0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        _check(self.batch_size is None or self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}")
        _check(0 < self.target_accuracy <= 1, f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        _check(self.eval_chunk >= 1, f"eval_chunk must be >= 1, got {self.eval_chunk}")
        resolve_device_name(self.device)  # raises on a malformed name; availability is checked at run time
        _check(self.readout_dtype in typing.get_args(ReadoutDtype),
               f"readout_dtype must be one of {typing.get_args(ReadoutDtype)}, got {self.readout_dtype!r}")
        _check(not (self.readout_dtype == "bfloat16" and self.fused_loss is False),
               "readout_dtype='bfloat16' runs in the fused readout; it needs fused_loss true or unset")
        _check(all(isinstance(p, str) and p.strip() for p in self.freeze),
               f"freeze must hold non-empty parameter-name patterns, got {list(self.freeze)}")
        _check(self.divergence_factor is None or (math.isfinite(self.divergence_factor) and self.divergence_factor > 1),
               f"divergence_factor must be a finite number > 1 or None, got {self.divergence_factor}")


@dataclass(frozen=True)
class RunConfig:
    """One training run: an ensemble with one member per seed, all of one shape."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: tuple[int, ...] = (0,)  # one ensemble member per seed (its world, init and batches)
    lrs: tuple[float, ...] | None = None  # per-member peak learning rate (None: train.lr for every member)
    # Per-member source run (its config hash) whose parameters matching ``init_params`` start this run
    # (the rest from this run's own init); resolved by the sweep from its store.
    init_from: tuple[str, ...] | None = None
    init_params: tuple[str, ...] = ()  # parameter-name patterns (fnmatch) copied from the source run

    def __post_init__(self) -> None:
        _check(len(self.seeds) >= 1, "seeds must name at least one seed")
        if self.init_from is None:
            _check(not self.init_params, "init_params needs init_from (the source run of each seed)")
        else:
            _check(len(self.init_from) == len(self.seeds),
                   f"init_from must name one source run per seed ({len(self.seeds)}), got {len(self.init_from)}")
            _check(all(isinstance(h, str) and len(h) == 64 and all(c in "0123456789abcdef" for c in h)
                       for h in self.init_from),
                   f"init_from must hold full config hashes (64 hex digits), got {list(self.init_from)}")
            _check(bool(self.init_params), "init_from needs init_params: which parameters to copy (e.g. 'blocks.*')")
            members = list(zip(self.seeds, self.member_lrs(), self.init_from, strict=True))
            _check(len(set(members)) == len(members), f"(seed, lr, init_from) members must be distinct, got {members}")
        _check(all(s >= 0 for s in self.seeds), f"seeds must be >= 0, got {list(self.seeds)}")
        if self.lrs is None and self.init_from is None:
            _check(len(set(self.seeds)) == len(self.seeds), f"seeds must be distinct, got {list(self.seeds)}")
        if self.lrs is not None:
            _check(len(self.lrs) == len(self.seeds),
                   f"lrs must give one learning rate per seed ({len(self.seeds)}), got {len(self.lrs)}")
            _check(all(lr > 0 for lr in self.lrs), f"lrs must be > 0, got {list(self.lrs)}")
            if self.init_from is None:
                pairs = list(zip(self.seeds, self.lrs, strict=True))
                _check(len(set(pairs)) == len(pairs), f"(seed, lr) pairs must be distinct, got {pairs}")

    def member_lrs(self) -> tuple[float, ...]:
        """The peak learning rate of each member."""
        return self.lrs if self.lrs is not None else (self.train.lr,) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def config_hash(self) -> str:
        return config_hash(self)


def resolve_device_name(name: str) -> str:
    """Check a device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``); returns it unchanged."""
    base, _, index = name.partition(":")
    ok = base in {"auto", "cpu", "cuda", "mps"} and (index == "" or (base == "cuda" and index.isdigit()))
    _check(ok, f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    return name


# ---------------------------------------------------------------------------------------------------
# JSON round-trip and hashing


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass; tuples become lists."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


_SECTIONS: dict[str, type] = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in set(data) - set(names))  # str: a YAML file's keys may be numbers or null
    _check(not unknown, f"unknown key(s) in {where}: {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a :class:`RunConfig` from :func:`to_dict` output, checking keys and types."""
    if not isinstance(data, dict):
        raise ValueError(f"a run config must be an object, got {type(data).__name__}")
    data = dict(data)
    unknown = sorted(str(k) for k in set(data) - {"task", "model", "train", "seeds", "lrs", "init_from",
                                                  "init_params"})
    _check(not unknown, f"unknown key(s) in run config: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {name: _build(cls, data[name], name) for name, cls in _SECTIONS.items() if name in data}
    if "seeds" in data:
        kwargs["seeds"] = _coerce(tuple[int, ...], data["seeds"], "seeds")
    if data.get("lrs") is not None:
        kwargs["lrs"] = _coerce(tuple[float, ...], data["lrs"], "lrs")
    if data.get("init_from") is not None:
        kwargs["init_from"] = _coerce(tuple[str, ...], data["init_from"], "init_from")
    if "init_params" in data:
        kwargs["init_params"] = _coerce(tuple[str, ...], data["init_params"], "init_params")
    return RunConfig(**kwargs)


#: Fields that say where and how a run executes, not what it computes: left out of its identity.
_NOT_IDENTITY = {"train": ("device", "eval_chunk", "fused_loss", "compile", "triton_kernels")}
#: Fields added after results were stored: part of a run's identity, but left out at their default so
#: that the hashes of earlier runs (and the stores keyed by them) stay valid.
_OMITTED_AT_DEFAULT = {"train": {"readout_dtype": "float32", "stop_at_target": True, "freeze": [],
                                  "divergence_factor": 10.0},
                       "task": {"world_variant": 0, "cot_loss": "chain"}, "": {"init_from": None, "init_params": []}}


def config_hash(cfg: Any) -> str:
    """SHA-256 of the canonical JSON of a config: equal configs give equal hashes across sessions.

    ``train.device``, ``train.eval_chunk``, ``train.fused_loss`` and ``train.compile`` are left out:
    the same run on another device, or through other kernels for the same loss, is the same run.
    ``train.readout_dtype`` counts (a bf16 readout may train a different model) except at its default,
    so hashes from before it existed still hold; so do the later fields ``train.stop_at_target``,
    ``train.freeze``, ``train.divergence_factor``, ``task.world_variant``, ``task.cot_loss``, ``init_from``
    and ``init_params``.
    """
    data = to_dict(cfg)
    for section, names in _NOT_IDENTITY.items():
        for name in names:
            data.get(section, {}).pop(name, None)
    for section, defaults in _OMITTED_AT_DEFAULT.items():
        where = data if section == "" else data.get(section, {})
        for name, default in defaults.items():
            if name in where and where[name] == default:
                del where[name]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Typed coercion shared by JSON loading and ``--set`` overrides


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "list of " + _type_name(typing.get_args(tp)[0])
    return "None" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert a JSON value or an override string to ``tp``, or raise ValueError naming ``where``."""
    origin = typing.get_origin(tp)
    bad = ValueError(f"{where} expects {_type_name(tp)}, got {value!r}")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null"}):
            if type(None) in args:
                return None
            raise bad
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ValueError:
                continue
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise bad
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.strip("()[]").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise bad
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise bad
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on", "false", "0", "no", "off"}:
            return value.lower() in {"true", "1", "yes", "on"}
        raise bad
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                raise bad from None
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise TypeError(f"no coercion for {tp!r} at {where}")  # internal: a config field of an unsupported type


def apply_overrides(cfg: RunConfig, overrides: list[str] | tuple[str, ...]) -> RunConfig:
    """Apply ``section.field=value`` strings (sections: task, model, train); unknown keys and bad types raise."""
    changes: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, eq, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        _check(bool(eq) and bool(dot) and bool(name),
               f"malformed --set {item!r}: expected section.field=value, e.g. model.d_mlp=64")
        _check(section in _SECTIONS, f"unknown section {section!r} in --set {item!r}; use one of "
               f"{', '.join(_SECTIONS)}")
        cls = _SECTIONS[section]
        hints = typing.get_type_hints(cls)
        _check(name in hints, f"unknown key {key.strip()!r} in --set; {section} has: "
               f"{', '.join(f.name for f in dataclasses.fields(cls))}")
        changes.setdefault(section, {})[name] = _coerce(hints[name], raw.strip(), key.strip())
    new = {s: dataclasses.replace(getattr(cfg, s), **kw) for s, kw in changes.items()}
    return dataclasses.replace(cfg, **new)
