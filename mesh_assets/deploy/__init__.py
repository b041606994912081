"""Deploys of the mesh: the shared platform and each domain as its own release (Kubernetes, Helm)."""
