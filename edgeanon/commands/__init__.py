"""Subcommands of the `edgeanon` CLI, one module each."""
