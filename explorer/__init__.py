"""Diffusion Explorer: the Qt application."""

__version__ = "0.1.0"
