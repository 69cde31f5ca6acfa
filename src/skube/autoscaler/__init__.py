"""Node pools (ordinary nodes of fixed size, one agent process each) and the cluster
autoscaler that grows and shrinks them: ``pools`` (declarations), ``decide`` (pure
scale-up / scale-down decisions), ``slots`` (each node's pod IP range), ``state``
(what a restart resumes), ``agents`` (the node processes), ``autoscaler`` (the loop)."""
from .pools import PoolError, PoolSpec, Size, merge, parse_flag, parse_size

__all__ = ["PoolError", "PoolSpec", "Size", "merge", "parse_flag", "parse_size"]
