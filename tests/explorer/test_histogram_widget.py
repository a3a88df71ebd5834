"""HistogramPlot: counts scaled into a fixed view instead of a changing y range."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGraphicsItem

from explorer.widgets.histogram import HistogramPlot


@pytest.fixture
def plot(qtbot) -> HistogramPlot:
    plot = HistogramPlot("test")
    qtbot.addWidget(plot)
    return plot


def test_count_top_scales_the_curves_and_keeps_the_view(plot):
    plot.set_histograms({"R": np.arange(256)})
    assert plot.count_top is None
    plot.set_count_top(510)
    plot.set_histograms({"R": np.arange(256), "G": np.ones(256)})  # G is made after the scaling
    assert plot.count_top == 510
    assert plot.viewRange()[1] == [0, 1]
    for curve in plot.curves.values():
        assert curve.transform().m22() == pytest.approx(1 / 510)
    # 255 counts of 510 reach half-way up; the data themselves are unchanged.
    assert plot.curves["R"].mapToParent(QPointF(0, 255)).y() == pytest.approx(0.5)
    np.testing.assert_array_equal(plot.curves["R"].yData, np.arange(256))

    plot.set_count_top(255)
    assert plot.curves["G"].mapToParent(QPointF(0, 255)).y() == pytest.approx(1.0)
    assert plot.viewRange()[1] == [0, 1]

    plot.set_count_top(300, bottom=-100)  # room below zero, like an auto-ranged view's padding
    assert plot.curves["R"].mapToParent(QPointF(0, 0)).y() == pytest.approx(0.25)
    assert plot.curves["R"].mapToParent(QPointF(0, 300)).y() == pytest.approx(1.0)
    assert (plot.count_bottom, plot.count_top) == (-100, 300)


def test_axes_are_cached_as_pixmaps(plot):
    for name in ("bottom", "left"):
        assert plot.getPlotItem().getAxis(name).cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache
