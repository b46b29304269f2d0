"""Bastion: an open-source backend in one Python package, speaking the PocketBase Web API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
