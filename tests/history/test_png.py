"""The PNG writer: bands reused from a layer, combined checksums, images that decode to what was drawn."""

from __future__ import annotations

import io
import random
import zlib

import numpy as np
from PIL import Image

from seeonline.history import png
from seeonline.history.raster import SizedCache


def decoded(data: bytes) -> np.ndarray:
    """A PNG's pixels (Pillow verifies the chunk CRCs and the stream's Adler-32 as it decodes)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(image)


def test_adler32_combines_like_zlib() -> None:
    rng = random.Random(5)
    for _ in range(50):
        first, second = rng.randbytes(rng.randrange(0, 3000)), rng.randbytes(rng.randrange(0, 90_000))
        combined = png.adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
        assert combined == zlib.adler32(first + second)


def test_an_image_drawn_over_a_layer_decodes_to_its_pixels() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (45, 33, 3), dtype=np.uint8)  # 45 rows: a last band shorter than the others
    layer = png.Layer(png.scanlines(base))
    rows = layer.rows.copy()
    drawn = png.rgb_view(rows)
    drawn[9:20, 5:30] = 17  # bands 1 and 2
    drawn[44, 0] = (1, 2, 3)  # the last band
    image = png.encode(rows, layer, [*png.bands_of(9, 20), *png.bands_of(44, 45)])
    assert (decoded(image) == drawn).all()
    assert (decoded(png.encode(layer.rows, layer, [])) == base).all()  # nothing changed: every band reused


def test_bands_of_a_row_range() -> None:
    assert list(png.bands_of(0, 8)) == [0]
    assert list(png.bands_of(7, 9)) == [0, 1]
    assert list(png.bands_of(16, 17)) == [2]


def test_sized_cache_keeps_its_budget_evicting_the_least_recently_used() -> None:
    cache: SizedCache[bytes] = SizedCache(10, len)
    cache.get("a", lambda: b"1234")
    cache.get("b", lambda: b"5678")
    cache.get("a", lambda: b"never made")  # a hit: "a" is now the most recent
    cache.get("c", lambda: b"9012")  # 12 bytes: "b" goes
    assert cache.held == 8
    assert cache.get("a", lambda: b"") == b"1234"
    assert cache.get("b", lambda: b"made again") == b"made again"
