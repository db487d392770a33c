"""The day chart the bot sends: a 0-24 h bar of one local day, drawn with matplotlib's object-oriented API.

No pyplot (global state): each chart is its own ``Figure`` on an Agg (PNG) or SVG canvas, rendered in a
worker thread. Text uses DejaVu Sans from matplotlib's own data (it covers Cyrillic), never a system font.
Layout and palettes follow the bot's chart: the bar as a capsule in the offline colour with online time
over it, hour ticks, the name top left, the day's online total top right, the date bottom left, a
legend; unknown time is hatched so it never reads as offline.
"""

# ruff: noqa: RUF001, RUF002 - the chart speaks Russian, as the bot does: Cyrillic letters are meant

from __future__ import annotations

import datetime
import io
import threading
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyBboxPatch, Rectangle
from matplotlib.transforms import Affine2D
from PIL import Image

from seeonline.choices import Theme

# Text as paths (the SVG needs no font to display) and stable element ids (the same chart, the same bytes).
mpl.rcParams["svg.fonttype"] = "path"
mpl.rcParams["svg.hashsalt"] = "seeonline-day-chart"

FONT_DIR = Path(mpl.get_data_path()) / "fonts" / "ttf"
REGULAR = FontProperties(fname=FONT_DIR / "DejaVuSans.ttf")
BOLD = FontProperties(fname=FONT_DIR / "DejaVuSans-Bold.ttf")

MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
          "ноября", "декабря")  # fmt: skip
DPI = 100
ASPECT = 4.0  # width : height, as the bot's 16 x 4 inch figure
BAR_BOTTOM, BAR_HEIGHT = 0.25, 0.4
PLOT_BOX = (0.02, 0.14, 0.96, 0.84)  # left, bottom, width, height in figure fractions
MARGIN_H = 0.2  # hours of plot either side of the bar


@dataclass(frozen=True)
class Palette:
    """The colours of one theme."""

    background: str
    axes: str
    text: str
    edge: str
    grid: str
    offline: str
    online: str
    label_box: str
    unknown: str


PALETTES = {
    Theme.LIGHT: Palette(
        "#ffffff", "#f7f7f7", "#333333", "#cccccc", "#e0e0e0", "#d3d3d3", "#4dd0e1", "#f0f0f0", "#9e9e9e"
    ),
    Theme.DARK: Palette(
        "#202a2e", "#2c3539", "#f0f0f0", "#888888", "#444444", "#4f4f4f", "#00b2b8", "#2a3437", "#9aa4a8"
    ),
}


@dataclass(frozen=True)
class ChartRequest:
    """What one chart shows: the timeline (as the API answers it), whose it is, and how to draw it."""

    timeline: dict[str, Any]
    label: str
    theme: Theme
    image_format: str  # png | svg
    width: int


def parse_instant(text: str) -> datetime.datetime:
    """An API timestamp (ISO 8601 with an offset)."""
    return datetime.datetime.fromisoformat(text)


def total_text(online_s: float) -> str:
    """``В сети: 3 ч 5 мин``."""
    hours, minutes = divmod(round(online_s / 60), 60)
    return f"В сети: {hours} ч {minutes} мин"


def date_text(day: datetime.date) -> str:
    """``28 ноября 2026``."""
    return f"{day.day:02d} {MONTHS[day.month - 1]} {day.year}"


def sized(font: FontProperties, size: float) -> FontProperties:
    """A copy of ``font`` at ``size`` points."""
    copy = font.copy()
    copy.set_size(size)
    return copy


@dataclass(frozen=True)
class Layout:
    """Where things go on one chart: the day's length, the hour labels, the size, the colours."""

    palette: Palette
    width: int
    length_h: float  # 23 or 25 on DST days
    hour_labels: tuple[str, ...]  # one per elapsed hour from local midnight, the local hour it is

    @property
    def scale(self) -> float:
        """Font sizes follow the width (the bot's chart is 1600 px wide)."""
        return self.width / 1600

    @property
    def span(self) -> float:
        """Hours across the plot box."""
        return self.length_h + 2 * MARGIN_H

    def figure(self) -> tuple[Figure, Any]:
        """A blank figure and the transform from (hours, 0-1) in the plot box to it."""
        figure = Figure(figsize=(self.width / DPI, self.width / ASPECT / DPI), dpi=DPI)
        figure.patch.set_facecolor(self.palette.background)
        left, bottom, box_width, box_height = PLOT_BOX
        plot = Affine2D().translate(MARGIN_H, 0).scale(box_width / self.span, box_height).translate(left, bottom)
        return figure, plot + figure.transFigure

    def capsule(self, data: Any) -> FancyBboxPatch:
        """The bar's outline: round ends in screen space (the radius in hours is half its height on screen)."""
        y_per_hour = (PLOT_BOX[2] * ASPECT / self.span) / PLOT_BOX[3]
        return FancyBboxPatch(
            (0, BAR_BOTTOM),
            self.length_h,
            BAR_HEIGHT,
            boxstyle=f"round,pad=0,rounding_size={(BAR_HEIGHT / 2) / y_per_hour}",
            mutation_aspect=y_per_hour,
            transform=data,
            facecolor=self.palette.offline,
            edgecolor=self.palette.edge,
            linewidth=1.5,
            zorder=1,
        )


def layout_for(request: ChartRequest) -> tuple[Layout, datetime.date, datetime.datetime]:
    """The chart's layout, its local day and the day's first instant (UTC)."""
    zone = zoneinfo.ZoneInfo(request.timeline["tz"])
    day = datetime.date.fromisoformat(request.timeline["date"])
    starts = datetime.datetime.combine(day, datetime.time(), zone).astimezone(datetime.UTC)
    ends = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), zone).astimezone(datetime.UTC)
    length_h = (ends - starts).total_seconds() / 3600
    hours = range(int(length_h) + 1)
    labels = tuple(f"{(starts + datetime.timedelta(hours=h)).astimezone(zone).hour:02d}" for h in hours[:-1])
    return Layout(PALETTES[request.theme], request.width, length_h, (*labels, "24")), day, starts


def draw_static(figure: Figure, data: Any, layout: Layout) -> None:
    """What every chart of this layout shares: background, hour grid and ticks, the empty bar, the legend."""
    palette, hours = layout.palette, range(len(layout.hour_labels))
    end = layout.length_h + MARGIN_H
    figure.add_artist(Rectangle((-MARGIN_H, 0), layout.span, 1, transform=data, facecolor=palette.axes, zorder=0))
    figure.add_artist(LineCollection([[(h, 0), (h, 1)] for h in hours], transform=data, colors=palette.grid,
                                     linewidths=0.5, linestyles="--", alpha=0.6, zorder=0.5))  # fmt: skip
    figure.add_artist(LineCollection([[(-MARGIN_H, 0), (end, 0)]], transform=data, colors=palette.edge,
                                     linewidths=0.8, zorder=0.6))  # fmt: skip
    figure.add_artist(LineCollection([[(h, 0), (h, -0.04)] for h in hours], transform=data, colors=palette.text,
                                     linewidths=0.8, zorder=0.6))  # fmt: skip
    figure.add_artist(layout.capsule(data))
    tick_font = sized(REGULAR, 10 * layout.scale)
    for h, label in zip(hours, layout.hour_labels, strict=True):
        figure.text(h, -0.06, label, transform=data, fontproperties=tick_font, ha="center", va="top",
                    color=palette.text)  # fmt: skip
    figure.text(end - 0.25, 0.03, "SeeOnline", transform=data, fontproperties=sized(REGULAR, 14 * layout.scale),
                ha="right", va="bottom", color=palette.text, alpha=0.7)  # fmt: skip
    draw_legend(figure, layout, data)


def draw_day(figure: Figure, data: Any, layout: Layout, request: ChartRequest, *, day: datetime.date,
             starts: datetime.datetime) -> None:  # fmt: skip
    """What this chart shows: online and unknown time on the bar, the name, the day's total, the date."""
    palette, timeline = layout.palette, request.timeline
    capsule = layout.capsule(data)
    capsule.set_visible(False)  # only a clip path here (drawn by draw_static)
    figure.add_artist(capsule)
    covered = 0.0
    for segment in timeline["segments"]:
        start = (parse_instant(segment["started_at"]) - starts).total_seconds() / 3600
        end = (parse_instant(segment["ended_at"]) - starts).total_seconds() / 3600
        covered = max(covered, end)
        if segment["state"] != "offline":
            figure.add_artist(bar(start, end, palette, unknown=segment["state"] == "unknown", data=data))
            figure.artists[-1].set_clip_path(capsule)
    if covered < layout.length_h:  # the rest of today has not happened
        rest = Rectangle((covered, BAR_BOTTOM), layout.length_h - covered, BAR_HEIGHT, transform=data,
                         facecolor=palette.axes, linewidth=0, zorder=2)  # fmt: skip
        figure.add_artist(rest)
        rest.set_clip_path(capsule)
    left, right = -MARGIN_H + 0.25, layout.length_h + MARGIN_H - 0.25
    figure.text(left, 0.95, request.label, transform=data, fontproperties=sized(BOLD, 16 * layout.scale),
                ha="left", va="top", color=palette.text)  # fmt: skip
    figure.text(right, 0.95, total_text(timeline["online_s"]), transform=data,
                fontproperties=sized(REGULAR, 12 * layout.scale), ha="right", va="top", color=palette.text,
                bbox={"facecolor": palette.label_box, "edgecolor": "none", "boxstyle": "round,pad=0.3"})  # fmt: skip
    figure.text(left, 0.03, date_text(day), transform=data, fontproperties=sized(REGULAR, 14 * layout.scale),
                ha="left", va="bottom", color=palette.text)  # fmt: skip


_static_lock = threading.Lock()


@lru_cache(maxsize=32)
def static_layer(layout: Layout) -> np.ndarray[Any, Any]:
    """The shared part of a PNG chart, rasterized once per layout (most of the drawing time is its text)."""
    figure, data = layout.figure()
    draw_static(figure, data, layout)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call]
    layer = np.asarray(canvas.buffer_rgba()).copy()  # type: ignore[no-untyped-call]
    release(figure, canvas)
    return layer


def release(figure: Figure, canvas: Any) -> None:
    """Free the pixel buffer now: a figure and its canvas reference each other, so without this the
    megabytes of every chart wait for the cyclic garbage collector (the API's memory grew ~120 MB per
    1,000 charts)."""
    canvas.renderer = None
    figure.clear()


def render(request: ChartRequest) -> bytes:
    """The chart as PNG or SVG bytes (blocking: call it from a worker thread)."""
    layout, day, starts = layout_for(request)
    figure, data = layout.figure()
    out = io.BytesIO()
    if request.image_format == "svg":
        draw_static(figure, data, layout)
        draw_day(figure, data, layout, request, day=day, starts=starts)
        FigureCanvasSVG(figure).print_svg(out, metadata={"Date": None})  # type: ignore[no-untyped-call]
        figure.clear()
        return out.getvalue()
    with _static_lock:  # one thread fills the cache; the others wait for it, then share the array
        background = static_layer(layout)
    draw_day(figure, data, layout, request, day=day, starts=starts)
    figure.patch.set_visible(False)  # the background comes from the static layer, copied into the buffer
    canvas = FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    np.asarray(renderer.buffer_rgba())[:] = background
    figure.draw(renderer)
    # Opaque, so RGB; a fast zlib level (flat colour compresses well anyway).
    Image.fromarray(np.asarray(canvas.buffer_rgba())[:, :, :3]).save(out, "png", compress_level=1)  # type: ignore[no-untyped-call]
    release(figure, canvas)
    return out.getvalue()


def bar(start: float, end: float, palette: Palette, *, unknown: bool, data: Any) -> Rectangle:
    """Online time filled, unknown time hatched (never the offline colour)."""
    return Rectangle(
        (start, BAR_BOTTOM),
        end - start,
        BAR_HEIGHT,
        transform=data,
        facecolor=palette.axes if unknown else palette.online,
        edgecolor=palette.unknown if unknown else "none",
        hatch="///" if unknown else None,
        linewidth=0,
        zorder=2,
    )


LEGEND = (("online", "В сети"), ("offline", "Не в сети"), ("unknown", "Нет данных"))


def draw_legend(figure: Figure, layout: Layout, data: Any) -> None:
    """Three swatches with their names, centred above the bar."""
    palette, font = layout.palette, sized(REGULAR, 12 * layout.scale)
    slot = 3.0  # hours of width per entry
    x = layout.length_h / 2 - slot * len(LEGEND) / 2
    for state, name in LEGEND:
        unknown = state == "unknown"
        swatch = Rectangle(
            (x, 0.8),
            0.5,
            0.06,
            transform=data,
            facecolor=palette.axes if unknown else palette.online if state == "online" else palette.offline,
            edgecolor=palette.unknown if unknown else "none",
            hatch="///" if unknown else None,
            linewidth=0.8 if unknown else 0,
            zorder=3,
        )
        figure.add_artist(swatch)
        figure.text(x + 0.7, 0.83, name, transform=data, fontproperties=font, ha="left", va="center",
                    color=palette.text)  # fmt: skip
        x += slot
