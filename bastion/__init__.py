"""Bastion: an open-source backend in one Python package, speaking the PocketBase Web API.

``from bastion import App, open_app`` gives a script the App of a data folder or database
(``open_app``, see bastion/cli/script.py), loaded only when asked for: the command line
starts without them.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["App", "__version__", "open_app"]


def __getattr__(name: str) -> Any:
    if name == "App":
        from bastion.core.app import App

        return App
    if name == "open_app":
        from bastion.cli.script import open_app

        return open_app
    raise AttributeError(f"module 'bastion' has no attribute {name!r}")
