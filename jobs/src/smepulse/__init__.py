"""SME Pulse jobs: the stage entrypoints, the pipeline catalog, the local runner and the CLI."""

__version__ = "0.1.0"
