"""Vigil: end-to-end encrypted messaging that still protects children."""

__version__ = "0.1.0"
