"""The day chart: PNG and SVG decode at the requested size, the PNG is matplotlib's drawing, themes differ, caching
headers, a stable SVG layout."""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from matplotlib.ft2font import FT2Font
from PIL import Image

from seeonline.choices import Theme
from seeonline.history.chart import BOLD, ChartRequest, agg_pixels, drawn
from seeonline.history.images import render
from tests.api.builders import Client
from tests.history import builders as b
from tests.history.builders import local

SNAPSHOT = Path(__file__).parent / "snapshots" / "day_chart.svg"
DAY = "2026-03-29"  # a 23-hour day in Berlin
TIMELINE = {
    "date": DAY,
    "tz": "Europe/Berlin",
    "online_s": 6600,
    "offline_s": 65400,
    "unknown_s": 10800,
    "segments": [
        {"state": "online", "started_at": "2026-03-28T23:00:00+00:00", "ended_at": "2026-03-29T00:40:00+00:00",
         "reason": None},
        {"state": "offline", "started_at": "2026-03-29T00:40:00+00:00", "ended_at": "2026-03-29T08:00:00+00:00",
         "reason": None},
        {"state": "unknown", "started_at": "2026-03-29T08:00:00+00:00", "ended_at": "2026-03-29T11:00:00+00:00",
         "reason": "tracker_down"},
        {"state": "online", "started_at": "2026-03-29T11:00:00+00:00", "ended_at": "2026-03-29T11:50:00+00:00",
         "reason": None},
        {"state": "offline", "started_at": "2026-03-29T11:50:00+00:00", "ended_at": "2026-03-29T22:00:00+00:00",
         "reason": None},
    ],
}  # fmt: skip


async def charted(db: Any, theme: str = "light") -> b.Subject:
    """A tracked user with a session on 2026-03-29 (Berlin)."""
    owner = await b.owner(db, "Europe/Berlin", theme)
    person = await b.subject(db, owner, local("Europe/Berlin", "2026-03-01 00:00"))
    await b.statuses(db, person.id, [(local("Europe/Berlin", "2026-03-01 00:00"), False, "was_online"),
                                     (local("Europe/Berlin", f"{DAY} 10:00"), True, "push"),
                                     (local("Europe/Berlin", f"{DAY} 11:30"), False, "was_online")])  # fmt: skip
    return person


@pytest.mark.parametrize("width", [400, 1600, 3200])
async def test_png_has_the_requested_size(client: Client, db: Any, width: int) -> None:
    person = await charted(db)
    response = await client.get(f"/tracked-users/{person.id}/chart/", params={"date": DAY, "width": str(width)})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.size == (width, width // 4)


async def test_svg_decodes_with_the_requested_size(client: Client, db: Any) -> None:
    person = await charted(db)
    response = await client.get(
        f"/tracked-users/{person.id}/chart/", params={"date": DAY, "format": "svg", "width": "800"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    assert (root.get("width"), root.get("height")) == ("576pt", "144pt")  # 800 x 200 px at 72 pt per 100 px


async def test_themes_differ_and_default_to_the_bot_users(client: Client, db: Any) -> None:
    person = await charted(db, theme="dark")
    url = f"/tracked-users/{person.id}/chart/"
    default = await client.get(url, params={"date": DAY})
    dark = await client.get(url, params={"date": DAY, "theme": "dark"})
    light = await client.get(url, params={"date": DAY, "theme": "light"})
    assert default.content == dark.content
    assert light.content != dark.content
    corner = Image.open(io.BytesIO(dark.content)).convert("RGB").getpixel((2, 2))
    assert corner == (0x20, 0x2A, 0x2E)  # the dark background
    assert Image.open(io.BytesIO(light.content)).convert("RGB").getpixel((2, 2)) == (255, 255, 255)


async def test_etag_and_cache_lifetime(client: Client, db: Any) -> None:
    person = await charted(db)
    url = f"/tracked-users/{person.id}/chart/"
    past = await client.get(url, params={"date": DAY})
    assert past.headers["cache-control"] == "max-age=86400"
    again = await client.get(url, params={"date": DAY}, headers={"If-None-Match": past.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    other_width = await client.get(
        url, params={"date": DAY, "width": "800"}, headers={"If-None-Match": past.headers["etag"]}
    )
    assert other_width.status_code == 200
    today = await client.get(url)
    assert today.headers["cache-control"] == "max-age=60"
    await b.statuses(db, person.id, [(local("Europe/Berlin", f"{DAY} 20:00"), True, "push")])
    changed = await client.get(url, params={"date": DAY}, headers={"If-None-Match": past.headers["etag"]})
    assert changed.status_code == 200  # new data, new tag


@pytest.mark.parametrize(
    ("params", "field"),
    [({"theme": "blue"}, "theme"), ({"format": "gif"}, "format"), ({"width": "399"}, "width"),
     ({"width": "3201"}, "width"), ({"width": "wide"}, "width"), ({"tz": "Nowhere"}, "tz")],
)  # fmt: skip
async def test_bad_chart_values_are_400(client: Client, db: Any, params: dict[str, str], field: str) -> None:
    person = await charted(db)
    response = await client.get(f"/tracked-users/{person.id}/chart/", params=params)
    assert (response.status_code, response.json()["field"]) == (400, field)


def test_cyrillic_renders_with_the_bundled_font() -> None:
    bold = FT2Font(str(BOLD.get_file()))
    cyrillic = render(ChartRequest(TIMELINE, "@алиса", Theme.LIGHT, "svg", 1600))
    # Text is drawn as glyph paths named by glyph index: each Cyrillic letter has a real glyph in the shipped font.
    for letter in "алиса":
        index = bold.get_char_index(ord(letter))
        assert index != 0  # 0 is the missing-glyph box
        assert f'id="DejaVuSans-Bold-{index:x}"'.encode() in cyrillic
    assert Path(str(BOLD.get_file())).is_relative_to(Path(matplotlib.get_data_path()))  # shipped, not the system's


def normalized(svg: bytes) -> str:
    """The SVG without what varies between matplotlib releases' headers."""
    text = svg.decode()
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def test_svg_snapshot_keeps_the_layout() -> None:
    """Regenerate with SEEONLINE_UPDATE_SNAPSHOTS=1 after an intended change of the drawing."""
    drawn = normalized(render(ChartRequest(TIMELINE, "@алиса_demo", Theme.DARK, "svg", 1600)))
    if os.environ.get("SEEONLINE_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(drawn)
    assert drawn == SNAPSHOT.read_text()


def pixels(png: bytes) -> np.ndarray[Any, Any]:
    """A PNG's RGB pixels, as ints."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def shifted(timeline: dict[str, Any], *, last_ends: str | None) -> dict[str, Any]:
    """The test timeline with its last segment ending at ``last_ends`` (a day still under way) instead."""
    copy = {**timeline, "segments": [dict(segment) for segment in timeline["segments"]]}
    if last_ends is not None:
        copy["segments"][-1]["ended_at"] = last_ends
    return copy


@pytest.mark.parametrize(
    ("theme", "width", "label", "last_ends"),
    [
        (Theme.DARK, 1600, "@алиса_demo", None),
        (Theme.LIGHT, 400, "@alice", None),
        (Theme.LIGHT, 1234, "@alice", "2026-03-29T15:20:00+00:00"),  # the rest of the day not happened yet
        (Theme.DARK, 3200, "@" + "очень_длинное_имя_" * 5, None),  # the name runs into the total's box
    ],
)
def test_png_is_matplotlibs_drawing_of_the_chart(theme: Theme, width: int, label: str, last_ends: str | None) -> None:
    """The composed PNG (cached layers, fills, text stamps) against the whole chart drawn as one figure."""
    request = ChartRequest(shifted(TIMELINE, last_ends=last_ends), label, theme, "png", width)
    for _ in range(2):  # drawn from fresh layers and stamps, then from the cached ones
        composed = pixels(render(request))
        reference = agg_pixels(drawn(request)[0]).astype(int)
        assert composed.shape == reference.shape
        assert np.abs(composed - reference).max() <= 2  # Agg's blending rounds a little differently
