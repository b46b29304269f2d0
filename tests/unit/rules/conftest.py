"""Fixtures for the rules tests live in rules_backends (a unique module name: these test
folders have no __init__.py, so a shared "conftest" import could pick up another folder's)."""

from rules_backends import rules_db

__all__ = ["rules_db"]
