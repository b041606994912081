"""Scaffolding: new domains from the platform's templates (``mesh new-domain``)."""
