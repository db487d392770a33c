"""The PNG day chart, composed from pieces matplotlib drew once per layout instead of a figure per chart.

Per layout (theme, width, the day's hours) Agg draws, once, with the functions of ``chart``: the static
layer, and the bar filled over its whole length with each fill (online, unknown, not yet happened) clipped
to its capsule. Agg snaps a rectangle's edges to whole pixels (a path of only horizontal and vertical
lines), so a chart's bar is those fills' columns copied between its spans' snapped edges: the pixels
drawing it would give. The name, total and date are drawn by the same ``Text`` artists onto a transparent
canvas, cropped, kept in a small cache and blended in; each appears on many charts (a target's name, a
day's date). Bands of rows the chart left as the static layer are not compressed again (``png``).
"""

from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg

from seeonline.history import png
from seeonline.history.chart import (
    BAR_BOTTOM,
    DPI,
    FILLS,
    Layout,
    Span,
    agg_pixels,
    draw_bar,
    draw_static,
    draw_texts,
)

V = TypeVar("V")
# What the caches may hold (bytes): a layout takes ~6.4 MB at 1600 px (four times that at 3200), a stamp
# ~5-40 KB. Together they bound what charts add to the API's memory.
LAYERS_BUDGET = 40 * 2**20
STAMPS_BUDGET = 4 * 2**20


class SizedCache(Generic[V]):
    """A least-recently-used cache bounded by the bytes its values hold; ``make`` runs under its lock, so
    concurrent misses of one key build it once."""

    def __init__(self, budget: int, size_of: Callable[[V], int]) -> None:
        self.budget, self.size_of = budget, size_of
        self.held = 0
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value for ``key``, made on a miss (evicting the least recently used beyond the budget)."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                return value
            value = make()
            self._items[key] = value
            self.held += self.size_of(value)
            while self.held > self.budget and len(self._items) > 1:
                _, evicted = self._items.popitem(last=False)
                self.held -= self.size_of(evicted)
            return value


@dataclass(frozen=True)
class Stamp:
    """Drawn text (RGBA over transparent) and where its top left corner goes."""

    top: int
    left: int
    rgba: png.Pixels


class Layers:
    """What every chart of one layout is composed from."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        figure, data = layout.figure()
        draw_static(figure, data, layout)
        static = agg_pixels(figure)
        self.height, self.width, _ = static.shape
        self.static = png.Layer(png.scanlines(static))
        filled = {fill: self._filled(fill, static) for fill in FILLS}
        changed = np.flatnonzero(np.any([(pixels != static).any(axis=(1, 2)) for pixels in filled.values()], axis=0))
        self.top, self.bottom = int(changed[0]), int(changed[-1]) + 1  # the rows a fill can touch
        self.fills = {fill: pixels[self.top : self.bottom].copy() for fill, pixels in filled.items()}
        x0, x1 = data.transform([(0.0, BAR_BOTTOM), (1.0, BAR_BOTTOM)])[:, 0]
        self.x_at_zero, self.x_per_hour = float(x0), float(x1 - x0)
        self._text_figure, text_data = layout.figure()
        self._texts = draw_texts(self._text_figure, text_data, layout, ("", "", ""))
        # One canvas for every stamp: a Text artist keeps the renderer it last drew on.
        self._canvas = RendererAgg(self.width, self.height, DPI)  # type: ignore[no-untyped-call]
        self._text_lock = threading.Lock()

    def _filled(self, fill: str, static: png.Pixels) -> png.Pixels:
        figure, data = self.layout.figure()
        draw_static(figure, data, self.layout)
        draw_bar(figure, data, self.layout, [Span(0.0, self.layout.length_h, fill)])
        return agg_pixels(figure)

    @property
    def nbytes(self) -> int:
        """Memory held by the pixels (the static layer, the fills, the stamps' canvas)."""
        canvas: int = 4 * self.width * self.height
        return int(self.static.nbytes + sum(int(pixels.nbytes) for pixels in self.fills.values()) + canvas)

    def column(self, hours: float) -> int:
        """The pixel edge Agg snaps a rectangle's side at ``hours`` to (round half up)."""
        return math.floor(self.x_at_zero + hours * self.x_per_hour + 0.5)

    def stamp(self, role: int, text: str) -> Stamp:
        """The ``role``-th text of ``draw_texts`` (name, total, date) saying ``text``, drawn by its artist."""
        with self._text_lock:
            artist = self._texts[role]
            artist.set_text(text)
            self._canvas.clear()  # type: ignore[no-untyped-call]
            artist.draw(self._canvas)
            rgba = np.asarray(self._canvas.buffer_rgba())  # type: ignore[no-untyped-call]
            rows, columns = np.flatnonzero(rgba[:, :, 3].any(axis=1)), np.flatnonzero(rgba[:, :, 3].any(axis=0))
            if rows.size == 0:
                return Stamp(0, 0, np.zeros((0, 0, 4), np.uint8))
            top, left = int(rows[0]), int(columns[0])
            return Stamp(top, left, rgba[top : int(rows[-1]) + 1, left : int(columns[-1]) + 1].copy())


LAYERS: SizedCache[Layers] = SizedCache(LAYERS_BUDGET, lambda layers: layers.nbytes)
STAMPS: SizedCache[Stamp] = SizedCache(STAMPS_BUDGET, lambda stamp: int(stamp.rgba.nbytes))


def blend(pixels: png.Pixels, stamp: Stamp) -> None:
    """Draw ``stamp`` over ``pixels`` (opaque RGB) where it covers them."""
    height, width = stamp.rgba.shape[:2]
    under = pixels[stamp.top : stamp.top + height, stamp.left : stamp.left + width]
    rgba = stamp.rgba[: under.shape[0], : under.shape[1]].astype(np.uint16)
    alpha = rgba[:, :, 3:]
    under[:] = (under * (255 - alpha) + rgba[:, :, :3] * alpha + 127) // 255


def render_png(layout: Layout, spans: list[Span], texts: tuple[str, str, str]) -> bytes:
    """The chart as PNG bytes (blocking: call it from a worker thread)."""
    layers = LAYERS.get(layout, lambda: Layers(layout))
    rows = layers.static.rows.copy()
    pixels = png.rgb_view(rows)
    changed: set[int] = set()
    bar = pixels[layers.top : layers.bottom]
    for span in spans:
        edges = sorted((layers.column(span.start_h), layers.column(span.start_h + (span.end_h - span.start_h))))
        left, right = max(edges[0], 0), min(edges[1], layers.width)
        if right > left:
            bar[:, left:right] = layers.fills[span.fill][:, left:right]
            changed.update(png.bands_of(layers.top, layers.bottom))
    for role, text in enumerate(texts):
        stamp = STAMPS.get((layout, role, text), functools.partial(layers.stamp, role, text))
        if stamp.rgba.size:
            blend(pixels, stamp)
            changed.update(png.bands_of(stamp.top, stamp.top + stamp.rgba.shape[0]))
    return png.encode(rows, layers.static, changed)
