"""Inference backends: one protocol (open / infer / close, a context manager) and a registry."""
from engines.backends.registry import available_backends, backend_from_config, create_backend, resolve_backend_name

__all__ = ["available_backends", "backend_from_config", "create_backend", "resolve_backend_name"]
