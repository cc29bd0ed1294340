"""cnnlab's shared layers: train (the torch core), store (database and queue), specs, settings, the CLI."""

__version__ = "0.1.0"
