"""Billing e2e fixtures: the virtual-node fixtures (an apiserver without controllers,
`skube virtual-node` processes with the mock provider)."""
from tests.node.conftest import cluster  # noqa: F401  (the module-scoped apiserver fixture)
