"""The Iceberg lakehouse: catalog, table engine and the Dagster IO manager on top of them.

This package is the only place in the mesh that knows how data products are stored.
"""
