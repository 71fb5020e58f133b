"""The ``renkei`` command: one module per command group; :func:`main` is the entry point."""

from renkei.cli.main import main

__all__ = ["main"]
