"""The ``renkei`` command: one module per command group; :func:`main` is the entry point."""

from renkei.cli.app import main

__all__ = ["main"]
