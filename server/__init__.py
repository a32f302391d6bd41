"""Tandem: a collaborative notebook server (shared Yjs documents, durable by design)."""

__version__ = "0.1.0"
