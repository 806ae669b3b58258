"""The ``chipscreen`` command line: one module per group of commands, all on one Typer ``app``.

It sits above ``pipeline/`` and ``flows/`` (``nightly`` runs a flow); nothing in ``pipeline/`` imports it.
"""
from __future__ import annotations

from flows.cli import screening  # noqa: F401, I001 - each module registers its commands on ``app``, in this order
from flows.cli import ledgers  # noqa: F401, I001
from flows.cli import parties  # noqa: F401, I001
from flows.cli.base import app, console


def main() -> None:  # pragma: no cover - console entry
    """Run the command line."""
    app()


__all__ = ["app", "console", "main"]
