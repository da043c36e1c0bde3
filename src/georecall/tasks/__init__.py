"""Task worlds, the vocabulary layout, query formats and query sets (docs/theory.md §1.1)."""

from georecall.tasks.formats import COT_FORMATS, ChainFormat, chain_format
from georecall.tasks.queries import (
    QuerySet,
    context_length,
    make_queries,
    n_query_space,
    resolve_query_count,
    stack_queries,
)
from georecall.tasks.vocab import Vocab
from georecall.tasks.world import World, make_world, rng_for, world_for

__all__ = [
    "COT_FORMATS",
    "ChainFormat",
    "QuerySet",
    "Vocab",
    "World",
    "chain_format",
    "context_length",
    "make_queries",
    "make_world",
    "n_query_space",
    "resolve_query_count",
    "rng_for",
    "stack_queries",
    "world_for",
]
