"""Memory estimates of a training, checked before anything is allocated (:func:`georecall.machine.check_fits`):
a huge size is refused with its estimate, not run until the machine runs out (pure arithmetic; no tensor
is built)."""

from __future__ import annotations

from georecall.config import RunConfig
from georecall.tasks import Vocab, context_length, resolve_query_count

#: Bytes per trained float32 parameter: the weight, its gradient and AdamW's two moments.
TRAIN_BYTES_PER_PARAM = 16
#: Live activations per query position and unit of width in a training step (forward kept for backward),
#: a generous factor over the widest layer.
ACTIVATION_FACTOR = 8


def model_params(run: RunConfig) -> int:
    """Parameters of one member, from the config alone (embedding, positions, blocks, readout)."""
    m, t = run.model, run.task
    v = Vocab(n_subjects=t.n_subjects, n_relations=t.n_relations, attributes=t.attributes,
              n_attributes=t.n_attributes).d_vocab
    d, ctx = m.d_model, context_length(t)
    mlp = 0 if m.attn_only else 2 * d * m.d_mlp + m.d_mlp + d + (2 * m.d_mlp * (m.d_mlp2 or 0) if m.d_mlp2 else 0)
    block = 4 * d * d + 4 * d + mlp + 4 * d
    readout = 0 if m.tie_unembed else v * d + v
    return v * d + ctx * d + m.n_layers * block + readout + 2 * d


def train_bytes(run: RunConfig) -> int:
    """Bytes a training of ``run`` (every member) needs at least: parameters with gradients and optimiser
    state, one step's activations, and one evaluation chunk's logits over the vocabulary."""
    members = len(run.seeds)
    params = model_params(run) * members * TRAIN_BYTES_PER_PARAM
    queries = resolve_query_count(run.task)
    if run.train.batch_size is not None:
        queries = min(queries, run.train.batch_size)
    m = run.model
    width = max(m.d_model, 0 if m.attn_only else m.d_mlp, m.d_mlp2 or 0)
    acts = members * queries * context_length(run.task) * width * 4 * ACTIVATION_FACTOR * m.n_layers
    # Evaluation scores a chunk of queries over the whole vocabulary at once.
    v = Vocab(n_subjects=run.task.n_subjects, n_relations=run.task.n_relations, attributes=run.task.attributes,
              n_attributes=run.task.n_attributes).d_vocab
    logits = members * min(queries, run.train.eval_chunk) * v * 4
    return params + acts + logits
