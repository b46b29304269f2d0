"""Concrete implementations of ``bastion.core.ports``, one module per technology."""
