"""Task worlds, the vocabulary layout and query sets (THEORY §1.1)."""

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
    "QuerySet",
    "Vocab",
    "World",
    "context_length",
    "make_queries",
    "make_world",
    "n_query_space",
    "resolve_query_count",
    "rng_for",
    "stack_queries",
    "world_for",
]
