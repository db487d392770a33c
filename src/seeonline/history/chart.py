"""The day chart the bot sends: a 0-24 h bar of one local day, drawn with matplotlib's object-oriented API.

No pyplot (global state): an SVG chart is its own ``Figure`` on an SVG canvas, rendered in a worker thread;
a PNG chart is composed from layers these same functions draw on Agg once per layout (``raster.py``). Text
uses DejaVu Sans from matplotlib's own data (it covers Cyrillic), never a system font.
Layout and palettes follow the bot's chart: the bar as a capsule in the offline colour with online time
over it, hour ticks, the name top left, the day's online total top right, the date bottom left, a
legend; unknown time is hatched so it never reads as offline.
"""

# ruff: noqa: RUF001, RUF002 - the chart speaks Russian, as the bot does: Cyrillic letters are meant

from __future__ import annotations

import datetime
import io
import zoneinfo
from dataclasses import dataclass
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
from matplotlib.text import Text
from matplotlib.transforms import Affine2D

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


@dataclass(frozen=True)
class Span:
    """A stretch of the bar drawn over the offline colour: online, unknown (hatched), or rest (not happened yet)."""

    start_h: float  # hours since the day's first instant
    end_h: float
    fill: str  # one of FILLS


FILLS = ("online", "unknown", "rest")


def hours_after(starts: datetime.datetime, instant: str) -> float:
    """An API timestamp as hours since ``starts``."""
    return (parse_instant(instant) - starts).total_seconds() / 3600


def bar_spans(layout: Layout, timeline: dict[str, Any], starts: datetime.datetime) -> list[Span]:
    """The timeline's online and unknown segments, in order, then the rest of a day still under way."""
    spans, covered = [], 0.0
    for segment in timeline["segments"]:
        start, end = hours_after(starts, segment["started_at"]), hours_after(starts, segment["ended_at"])
        covered = max(covered, end)
        if segment["state"] != "offline":
            spans.append(Span(start, end, segment["state"]))
    if covered < layout.length_h:  # the rest of today has not happened
        spans.append(Span(covered, layout.length_h, "rest"))
    return spans


def fill_patch(span: Span, layout: Layout, data: Any) -> Rectangle:
    """The rectangle that draws ``span`` (clipped to the capsule by the caller)."""
    if span.fill == "rest":
        return Rectangle((span.start_h, BAR_BOTTOM), span.end_h - span.start_h, BAR_HEIGHT, transform=data,
                         facecolor=layout.palette.axes, linewidth=0, zorder=2)  # fmt: skip
    return bar(span.start_h, span.end_h, layout.palette, unknown=span.fill == "unknown", data=data)


def draw_bar(figure: Figure, data: Any, layout: Layout, spans: list[Span]) -> None:
    """The spans over the empty bar of the static layer, inside its capsule."""
    capsule = layout.capsule(data)
    capsule.set_visible(False)  # only a clip path here (drawn by draw_static)
    figure.add_artist(capsule)
    for span in spans:
        patch = fill_patch(span, layout, data)
        figure.add_artist(patch)
        patch.set_clip_path(capsule)


def draw_texts(figure: Figure, data: Any, layout: Layout, texts: tuple[str, str, str]) -> list[Text]:
    """The name top left, the day's online total top right (in a box), the date bottom left; in that order."""
    palette, (label, total, date) = layout.palette, texts
    left, right = -MARGIN_H + 0.25, layout.length_h + MARGIN_H - 0.25
    return [
        figure.text(left, 0.95, label, transform=data, fontproperties=sized(BOLD, 16 * layout.scale),
                    ha="left", va="top", color=palette.text),
        figure.text(right, 0.95, total, transform=data, fontproperties=sized(REGULAR, 12 * layout.scale),
                    ha="right", va="top", color=palette.text,
                    bbox={"facecolor": palette.label_box, "edgecolor": "none", "boxstyle": "round,pad=0.3"}),
        figure.text(left, 0.03, date, transform=data, fontproperties=sized(REGULAR, 14 * layout.scale),
                    ha="left", va="bottom", color=palette.text),
    ]  # fmt: skip


def day_texts(request: ChartRequest, day: datetime.date) -> tuple[str, str, str]:
    """The chart's name, total and date, as ``draw_texts`` takes them."""
    return request.label, total_text(request.timeline["online_s"]), date_text(day)


def draw_day(figure: Figure, data: Any, layout: Layout, request: ChartRequest, *, day: datetime.date,
             starts: datetime.datetime) -> None:  # fmt: skip
    """What this chart shows: online and unknown time on the bar, the name, the day's total, the date."""
    draw_bar(figure, data, layout, bar_spans(layout, request.timeline, starts))
    draw_texts(figure, data, layout, day_texts(request, day))


def agg_pixels(figure: Figure) -> np.ndarray[Any, Any]:
    """The figure rasterized by Agg as RGB rows (top first), its buffer freed at once."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call]
    pixels = np.asarray(canvas.buffer_rgba())[:, :, :3].copy()  # type: ignore[no-untyped-call]
    release(figure, canvas)
    return pixels


def release(figure: Figure, canvas: Any) -> None:
    """Free the pixel buffer now: a figure and its canvas reference each other, so without this the
    megabytes of every figure wait for the cyclic garbage collector."""
    canvas.renderer = None
    figure.clear()


def drawn(request: ChartRequest) -> tuple[Figure, Layout]:
    """The whole chart as one matplotlib figure: the definition of what the chart looks like."""
    layout, day, starts = layout_for(request)
    figure, data = layout.figure()
    draw_static(figure, data, layout)
    draw_day(figure, data, layout, request, day=day, starts=starts)
    return figure, layout


def render_svg(request: ChartRequest) -> bytes:
    """The chart as SVG: matplotlib's drawing written out (blocking: call it from a worker thread)."""
    figure, _ = drawn(request)
    out = io.BytesIO()
    FigureCanvasSVG(figure).print_svg(out, metadata={"Date": None})  # type: ignore[no-untyped-call]
    figure.clear()
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
