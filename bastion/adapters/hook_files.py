"""Hook files: the app's own Python, loaded from a folder at start.

Every ``*.py`` file of the folder (``--hooks-dir``, default ``bastion_hooks`` beside the
data folder), in name order, is run as a module; its ``setup(app)`` function, when it
has one, registers hooks with the App's decorators. A file that fails to load stops the
start with its name, line and message. ``bastion serve --dev`` loads the folder again
when a file changes: the new hooks replace the old ones at once, and a file that fails
then is reported and the hooks already running stay.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import traceback
from pathlib import Path

from bastion.core.app import App
from bastion.core.hooks.records import Hooks

log = logging.getLogger("bastion.hooks")
WATCH_EVERY = 1.0


class HookFileError(Exception):
    """A hook file that could not be loaded; the message names its file and line."""


def hook_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith((".", "_"))) if folder.is_dir() else []


def load_hooks(app: App, folder: Path) -> list[str]:
    """Load every hook file of ``folder`` into a fresh set of hooks and make it the App's;
    the files' names. Raises HookFileError, leaving the App's hooks as they were."""
    previous, fresh = app.hooks, Hooks()
    app.use_hooks(fresh)
    try:
        for path in hook_files(folder):
            _load(app, path)
    except BaseException:
        app.use_hooks(previous)
        raise
    return [p.name for p in hook_files(folder)]


def _load(app: App, path: Path) -> None:
    name = f"bastion_hooks_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HookFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        sys.modules[name] = module  # dataclasses and the like look their module up
        spec.loader.exec_module(module)
        setup = getattr(module, "setup", None)
        if callable(setup):
            setup(app)
    except Exception as exc:
        raise HookFileError(_where(path, exc)) from exc


def _where(path: Path, exc: Exception) -> str:
    """``path, line N: Kind: message`` from the deepest frame in the hook file."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    at = f", line {line}" if line else ""
    return f"{path}{at}: {type(exc).__name__}: {exc}"


def _stamps(folder: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime for p in hook_files(folder)}


async def reload_on_change(app: App, folder: Path) -> None:
    """``serve --dev``: load the hook files again whenever one is added, changed or removed."""
    seen = _stamps(folder)
    while True:
        await asyncio.sleep(WATCH_EVERY)
        now = _stamps(folder)
        if now == seen:
            continue
        seen = now
        try:
            names = load_hooks(app, folder)
        except HookFileError as exc:
            log.error("hook files not reloaded (the previous hooks stay): %s", exc)
            continue
        log.info("hook files reloaded: %s", ", ".join(names) or "none")
