"""Reusable, torch-free widgets.  Importing this package configures pyqtgraph once."""

import pyqtgraph as pg

# Arrays are H×W(×C), row-major, like numpy and Pillow (pyqtgraph defaults to column-major).
pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="#333")
