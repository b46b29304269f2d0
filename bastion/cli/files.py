"""``bastion files`` — move uploaded files between the local folder and an S3 bucket, and
sweep away the files no record holds."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bastion.cli.config import Config, DbOpt, DirOpt, MigOpt

if TYPE_CHECKING:
    from bastion.core.app import App
    from bastion.core.files.migrate import MigrationReport
    from bastion.core.ports import FileStorage

files_cli = typer.Typer(no_args_is_help=True, help="Move files between the local folder and S3; sweep orphans.")



class Place(enum.StrEnum):
    s3 = "s3"
    local = "local"


def storage_root(config: Config) -> Path:
    """The folder of local files: ``storage`` in the data folder, as PocketBase's ``pb_data/storage``."""
    return config.data_dir / "storage"


MIGRATE_HELP = (
    "Move every uploaded file to S3 or to the local folder, then switch s3.enabled to match.\n\n"
    "Each file is copied, read back and compared before it leaves its old place; after an "
    "interruption, run it again and it goes on where it stopped. Stop the server first: a file "
    "uploaded meanwhile may stay behind (running it again moves it).")


@files_cli.command("migrate", help=MIGRATE_HELP)
def migrate_files(
    to: Annotated[Place, typer.Option("--to", help="Where the files go: s3 (the bucket of the s3 settings) "
                                      "or local (the storage folder in --dir).")],
    data_dir: DirOpt = Path("bastion_data"), database_url: DbOpt = "", migrations_dir: MigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print each file as it is done.")] = False,
) -> None:
    from bastion.cli.runner import run

    config = Config(data_dir=data_dir, database_url=database_url, migrations_dir=migrations_dir)
    run(config, lambda app: _migrate(app, config, to, verbose))


async def _migrate(app: App, config: Config, to: Place, verbose: bool) -> None:
    from bastion.adapters.files_local import LocalStorage
    from bastion.adapters.files_s3 import S3Storage, missing_options
    from bastion.core.files.migrate import migrate

    options = dict(app.settings.current["s3"])
    if missing := missing_options(options):
        typer.secho(f"Error: the s3 settings lack {', '.join(missing)}.\n"
                    "Set them in the dashboard or with PATCH /api/settings, then run this again.", fg="red", err=True)
        raise typer.Exit(2)
    local, bucket = LocalStorage(storage_root(config)), S3Storage(options)
    try:
        await bucket.check()
        source, target = (local, bucket) if to is Place.s3 else (bucket, local)
        report = await migrate(source, target, on_progress=_printer(verbose))
    finally:
        await bucket.close()
    _summary(report, _describe(source, options), _describe(target, options))
    if report.failed:
        raise typer.Exit(1)
    await app.settings.update({"s3": {"enabled": to is Place.s3}})
    typer.echo(f"s3.enabled is now {'true' if to is Place.s3 else 'false'}: files are served from "
               f"{_describe(target, options)}.")


def _printer(verbose: bool) -> Any:
    if not verbose:
        return None
    return lambda key, outcome: typer.echo(f"{outcome:8} {key}")


def _describe(storage: FileStorage, options: dict[str, Any]) -> str:
    if storage.name == "s3":
        return f"S3 bucket {options['bucket']!r} at {options['endpoint']}"
    return "the local storage folder"


def _summary(report: MigrationReport, source: str, target: str) -> None:
    typer.echo(f"Moved {report.moved} files from {source} to {target}: {report.copied} copied "
               f"({report.bytes_copied / 1e6:.1f} MB), {report.present} already there.")
    if report.failed:
        typer.secho(f"{len(report.failed)} files were kept in {source}, their copy failed:", fg="red", err=True)
        for key, why in report.failed:
            typer.secho(f"  {key}: {why}", fg="red", err=True)
        typer.secho("Nothing was switched; fix the cause and run this again.", fg="red", err=True)


SWEEP_HELP = (
    "Delete stored files that no record holds (left by a crash, a failed deletion or a removed "
    "field), and thumbs of files that are gone. Files younger than --grace are kept: they may "
    "belong to a write still in flight.")


@files_cli.command("sweep", help=SWEEP_HELP)
def sweep_files(
    grace: Annotated[float, typer.Option("--grace", min=0, help="Keep files younger than this, in seconds.")] = 3600,
    data_dir: DirOpt = Path("bastion_data"), database_url: DbOpt = "", migrations_dir: MigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print each file deleted.")] = False,
) -> None:
    from bastion.cli.runner import run

    config = Config(data_dir=data_dir, database_url=database_url, migrations_dir=migrations_dir)
    run(config, lambda app: _sweep(app, grace, verbose))


async def _sweep(app: App, grace: float, verbose: bool) -> None:
    removed = await app.file_service.sweep(grace)
    for key in removed if verbose else ():
        typer.echo(f"deleted  {key}")
    typer.echo(f"Deleted {len(removed)} orphaned files from {app.file_service.storage().name} storage.")
