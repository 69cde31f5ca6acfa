"""The elastic container instance runtime: images, sandboxes, containers, probes, logs, metrics."""
