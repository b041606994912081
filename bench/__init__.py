"""Benchmarks of the platform (``mesh bench io``). Nothing here is imported by the platform itself."""
