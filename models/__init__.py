"""Backends of Diffusion Explorer: pure numpy/torch, no Qt.

Importing this package loads neither torch nor Qt; the torch modules import
torch themselves, so the torch-free chapters (Pixels, Noise) start fast.
"""
