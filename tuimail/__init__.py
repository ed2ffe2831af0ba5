"""tuimail: an offline-first terminal mail client."""

__version__ = "0.1.0"
