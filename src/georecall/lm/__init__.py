"""Real language models: loading a pretrained causal LM (offline-aware, one-line errors) and the packaged fact set
of countries that the ``real_lm`` experiment probes. Importing this package does not import transformers."""

from georecall.lm.facts import FactSet, load_facts
from georecall.lm.load import PACKAGED, LanguageModel, LMLoadError, load_lm, packaged_cache_dir, tiny_lm

__all__ = ["PACKAGED", "FactSet", "LMLoadError", "LanguageModel", "load_facts", "load_lm", "packaged_cache_dir",
           "tiny_lm"]
