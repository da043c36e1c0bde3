"""What a pretrained LM recalls, and what its hidden states hold about a subject (the ``real_lm`` experiment).

Two measurements on a :class:`georecall.lm.load.LanguageModel` and a :class:`georecall.lm.facts.FactSet`:

* :func:`recall`: the greedy completion of each relation's prompt for each subject (batched, left padding
  with an attention mask), matched against the attribute by :data:`RECALL_RULE`;
* :func:`subject_representations`: every hidden state (the embeddings, then each block's output; HF's last
  one has the final norm applied) of the prompt that names no relation (``facts.neutral``), at the subject's
  last token and averaged over the subject's tokens.

torch and transformers are imported when a function runs; nothing here trains.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The matching rule of :func:`recall`, in words (stored in the experiment's payload).
RECALL_RULE = ("greedy completion of the relation's prompt; both the completion and the attribute are lowercased, "
               "stripped of surrounding spaces and punctuation and of a leading 'the '; recalled when the "
               "completion starts with the attribute, or with the attribute's first word if that word has at "
               "least 4 letters, followed by the end of the completion or a character that is not a letter or "
               "digit (so 'euro' does not match 'european')")

_STRIP = string.whitespace + string.punctuation


def normalise(text: str) -> str:
    """Lowercase, strip surrounding spaces and punctuation, and drop a leading ``"the "``."""
    t = text.lower().strip(_STRIP)
    if t.startswith("the "):
        t = t[4:].strip(_STRIP)
    return t


def _starts_with_word(text: str, prefix: str) -> bool:
    if not prefix or not text.startswith(prefix):
        return False
    return len(text) == len(prefix) or not text[len(prefix)].isalnum()


def matches(completion: str, attribute: str) -> bool:
    """Whether ``completion`` states ``attribute`` by :data:`RECALL_RULE`."""
    c, a = normalise(completion), normalise(attribute)
    if _starts_with_word(c, a):
        return True
    first = a.split()[0] if a.split() else ""
    first = first.strip(_STRIP)
    return sum(ch.isalpha() for ch in first) >= 4 and _starts_with_word(c, first)


@dataclass(frozen=True)
class RecallResult:
    """``recalled[r, s]``: whether the LM's greedy completion of relation r's prompt for subject s states
    the attribute; ``completions[r][s]`` the completion's text; ``prompts[r][s]`` the prompt."""

    relations: tuple[str, ...]
    recalled: np.ndarray  # [K, N] bool
    completions: list[list[str]]
    prompts: list[list[str]]
    rule: str = RECALL_RULE

    @property
    def rate(self) -> float:
        return float(self.recalled.mean()) if self.recalled.size else float("nan")

    def by_relation(self) -> dict[str, float]:
        return {r: float(self.recalled[i].mean()) for i, r in enumerate(self.relations)}


@dataclass(frozen=True)
class Representations:
    """Hidden states of the neutral prompt of each subject: ``last`` [L+1, N, d] at the subject's last token,
    ``mean`` [L+1, N, d] averaged over its tokens (float32; index 0 = the input embeddings);
    ``n_subject_tokens`` [N]: how many tokens the subject's name takes in the prompt."""

    last: np.ndarray
    mean: np.ndarray
    n_subject_tokens: np.ndarray
    prompts: list[str]


def _fill(template: str, subject: str) -> str:
    return template.replace("{subject}", subject)


def _pad_id(tokenizer: Any) -> int:
    for name in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return 0


def _ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    enc = tokenizer(list(texts))
    return [list(ids) for ids in enc["input_ids"]]


def _batch(ids: Sequence[Sequence[int]], pad: int, *, left: bool) -> tuple[Any, Any]:
    import torch

    width = max(len(x) for x in ids)
    tokens = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        if left:
            tokens[i, width - len(x):] = torch.tensor(x, dtype=torch.long)
            mask[i, width - len(x):] = 1
        else:
            tokens[i, :len(x)] = torch.tensor(x, dtype=torch.long)
            mask[i, :len(x)] = 1
    return tokens, mask


def _device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover - a model without parameters
        import torch

        return torch.device("cpu")


def complete(lm: Any, prompts: Sequence[str], *, max_new_tokens: int = 8, batch_size: int = 32) -> list[str]:
    """Greedy completions (``max_new_tokens`` new tokens, decoded without special tokens) of ``prompts``.

    Prompts are sorted by length and batched with left padding and an attention mask, so a batch wastes
    little compute on padding and every prompt's last token sits at the same position.
    """
    import torch

    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}")
    tok, model = lm.tokenizer, lm.model
    pad = _pad_id(tok)
    ids = _ids(tok, prompts)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[str] = [""] * len(ids)
    dev = _device(model)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        tokens, mask = _batch([ids[i] for i in chunk], pad, left=True)
        with torch.inference_mode():
            gen = model.generate(input_ids=tokens.to(dev), attention_mask=mask.to(dev), do_sample=False,
                                 max_new_tokens=max_new_tokens, min_new_tokens=1, pad_token_id=pad,
                                 num_beams=1, temperature=None, top_p=None, top_k=None)
        new = gen[:, tokens.shape[1]:].cpu()
        for row, i in enumerate(chunk):
            out[i] = tok.decode(new[row].tolist(), skip_special_tokens=True)
    return out


def recall(lm: Any, facts: Any, *, max_new_tokens: int = 8, batch_size: int = 32) -> RecallResult:
    """Greedy completion of every relation's template for every subject, matched by :data:`RECALL_RULE`."""
    relations = tuple(facts.relations)
    prompts = [[_fill(facts.templates[r], s) for s in facts.subjects] for r in relations]
    flat = complete(lm, [p for row in prompts for p in row], max_new_tokens=max_new_tokens, batch_size=batch_size)
    n = len(facts.subjects)
    completions = [flat[i * n:(i + 1) * n] for i in range(len(relations))]
    recalled = np.array([[matches(c, facts.values[r][s]) for s, c in enumerate(completions[i])]
                         for i, r in enumerate(relations)], dtype=bool).reshape(len(relations), n)
    return RecallResult(relations=relations, recalled=recalled, completions=completions, prompts=prompts)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def subject_spans(tokenizer: Any, prompts: Sequence[str], spans: Sequence[tuple[int, int]]) -> \
        tuple[list[list[int]], list[tuple[int, int]]]:
    """Token ids of each prompt and the token range ``[lo, hi)`` of the subject, whose characters are
    ``spans[i]`` of ``prompts[i]``.

    With a fast tokenizer a token is the subject's when its character offsets overlap the subject's; otherwise
    the subject's tokens are those of ``prompt[:span end]`` past the longest prefix shared with the
    tokens of ``prompt[:span start]`` stripped of trailing spaces. A subject always has at least one token.
    """
    try:
        enc = tokenizer(list(prompts), return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        ids = [list(x) for x in enc["input_ids"]]
    except (NotImplementedError, ValueError, TypeError, KeyError):
        offsets, ids = None, _ids(tokenizer, prompts)
    out = []
    for i, (lo_c, hi_c) in enumerate(spans):
        if offsets is not None:
            inside = [t for t, (a, b) in enumerate(offsets[i]) if b > a and a < hi_c and b > lo_c]
            if inside:
                out.append((inside[0], inside[-1] + 1))
                continue
        head = _ids(tokenizer, [prompts[i][:lo_c].rstrip()])[0] if prompts[i][:lo_c].strip() else []
        upto = _ids(tokenizer, [prompts[i][:hi_c]])[0]
        lo = min(_common_prefix(head, upto), max(len(upto) - 1, 0))
        out.append((lo, max(len(upto), lo + 1)))
    return ids, out


def subject_representations(lm: Any, facts: Any, *, batch_size: int = 32) -> Representations:
    """All hidden states of ``facts.neutral`` for each subject at its last token and averaged over its tokens.

    Batches are right-padded with an attention mask (causal attention: padding after a prompt changes nothing
    before it). ``output_hidden_states=True`` gives L+1 states: the input embeddings, then each block's output.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    template = facts.neutral if "{subject}" in facts.neutral else facts.neutral + " {subject}"
    prompts, char_spans = [], []
    head, _, _ = template.partition("{subject}")
    for s in facts.subjects:
        text = _fill(template, s)
        prompts.append(text)
        char_spans.append((len(head), len(head) + len(s)))
    ids, spans = subject_spans(lm.tokenizer, prompts, char_spans)
    pad = _pad_id(lm.tokenizer)
    model, dev = lm.model, _device(lm.model)
    n = len(prompts)
    last = mean = None
    order = sorted(range(n), key=lambda i: len(ids[i]))
    for start in range(0, n, batch_size):
        chunk = order[start:start + batch_size]
        tokens, mask = _batch([ids[i] for i in chunk], pad, left=False)
        with torch.inference_mode():
            out = model(input_ids=tokens.to(dev), attention_mask=mask.to(dev), output_hidden_states=True,
                        use_cache=False)
        hs = torch.stack(out.hidden_states).float().cpu()  # [L+1, B, T, d]
        if last is None:
            last = np.zeros((hs.shape[0], n, hs.shape[-1]), dtype=np.float32)
            mean = np.zeros_like(last)
        for row, i in enumerate(chunk):
            lo, hi = spans[i]
            last[:, i] = hs[:, row, hi - 1].numpy()
            mean[:, i] = hs[:, row, lo:hi].mean(1).numpy()
    assert last is not None and mean is not None
    return Representations(last=last, mean=mean, n_subject_tokens=np.array([hi - lo for lo, hi in spans]),
                           prompts=prompts)
