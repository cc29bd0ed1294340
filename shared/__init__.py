"""cnnlab's common code: models, data, training engine, specs and storage."""

__version__ = "0.1.0"
