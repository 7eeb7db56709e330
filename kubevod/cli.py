"""The ``kubevod`` command line: local mode, the library from the terminal, and helpers."""

from __future__ import annotations

import typer

from kubevod.__about__ import __version__

app = typer.Typer(
    name="kubevod",
    help="Self-hosted video on demand: one process on a laptop, or declarative on k3s.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kubevod {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """kubevod: transcode, store and stream your own videos."""


@app.command()
def demo() -> None:
    """Make a short demo video and serve it on the embedded default (what `make run` does)."""
    typer.echo("kubevod local mode is not built yet (issue 7): nothing to serve.")
    raise typer.Exit(1)
