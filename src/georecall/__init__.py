"""georecall: geometric factual recall in transformers, runnable and measurable."""

__version__ = "0.1.0"
