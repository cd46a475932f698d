"""Is a figure readable as rendered? Every drawn text inside the canvas; titles, axis labels and tick
labels not on top of one another; no legend over a text (tests/ is on sys.path:
`from layout_helpers import assert_readable`). Texts are compared by their axis-aligned boxes, so
a slanted label collides with its neighbours' boxes: turn labels 0° or 90°.

Only texts that are actually drawn count: a figure is rendered once with `Text.draw` watched, so
tick labels the locator made outside the view, or empty strings, are not mistaken for defects.
"""

from __future__ import annotations

from itertools import combinations
from unittest import mock

from matplotlib.text import Text

TOLERANCE_PX = 0.5  # rounding of glyph extents; a real overlap or overflow is pixels wide


def drawn_texts(fig) -> list[tuple[Text, object]]:
    """(text artist, window extent in pixels) of every non-empty text drawn when `fig` renders."""
    drawn = []
    draw = Text.draw

    def watched(self, renderer):
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self, self.get_window_extent(renderer)))

    with mock.patch.object(Text, "draw", watched):
        fig.canvas.draw()
    return drawn


def _kinds(fig) -> dict[int, str]:
    """id(text) -> 'tick' | 'legend' for the texts that are not titles or labels."""
    kinds = {}
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                kinds.update({id(tick.label1): "tick", id(tick.label2): "tick"})
    for legend in _legends(fig):
        kinds.update({id(t): "legend" for t in [*legend.get_texts(), legend.get_title()]})
    return kinds


def _labels(fig) -> set[int]:
    """ids of the titles (every location), axis labels and the figure's suptitle."""
    ids = {id(fig._suptitle)} if fig._suptitle is not None else set()
    for ax in fig.axes:
        ids |= {id(ax.title), id(ax._left_title), id(ax._right_title), id(ax.xaxis.label), id(ax.yaxis.label)}
    return ids


def _overlap(a, b) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE_PX) and (min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE_PX)


def layout_problems(fig) -> list[str]:
    """What a reader would see wrong: texts cut by the canvas edge, labels over labels or tick labels."""
    texts = drawn_texts(fig)
    canvas = fig.bbox
    problems = [f"outside the canvas: {t.get_text()!r} at {box.bounds} (canvas {canvas.bounds})"
                for t, box in texts
                if box.x0 < canvas.x0 - TOLERANCE_PX or box.y0 < canvas.y0 - TOLERANCE_PX
                or box.x1 > canvas.x1 + TOLERANCE_PX or box.y1 > canvas.y1 + TOLERANCE_PX]
    kinds, labels = _kinds(fig), _labels(fig)
    checked = [(t, box) for t, box in texts if id(t) in labels or kinds.get(id(t)) == "tick"]
    for (a, box_a), (b, box_b) in combinations(checked, 2):
        if kinds.get(id(a)) == kinds.get(id(b)) == "tick" and a.axes is not b.axes:
            continue  # tick labels of two panels: their axes' labels and titles keep them apart
        if _overlap(box_a, box_b):
            problems.append(f"overlap: {a.get_text()!r} and {b.get_text()!r}")
    renderer = fig.canvas.get_renderer()
    for legend in _legends(fig):  # a legend hides no text: labels, ticks, annotations
        box = legend.get_window_extent(renderer)
        problems += [f"legend over {t.get_text()!r}" for t, text_box in texts
                     if kinds.get(id(t)) != "legend" and _overlap(box, text_box)]
    return problems


def _legends(fig) -> list:
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]


def assert_readable(fig) -> None:
    problems = layout_problems(fig)
    assert not problems, "\n".join(problems)
