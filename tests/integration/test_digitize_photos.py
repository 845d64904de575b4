"""Phone photos (issue 17 §2): the page is found in the frame, the perspective undone, shadows and
uneven light evened, the orientation fixed; a scan goes through untouched."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lienthong.digitize import photo
from lienthong.digitize.pipeline import digitize_file
from samples.forms import birth_certificate
from samples.photos import Shot, phone_photo

SMALL = (1500, 2000)  # a 3 Mpx frame keeps the test quick; the benchmark uses 6.75 Mpx


def _truth(fields: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in fields.items()}


def test_the_page_is_found_in_a_photo_and_not_in_a_scan() -> None:
    shot = Shot(tilt=0.08, shadow=0.4, side_light=0.3, frame=SMALL)
    shotted = phone_photo("birth_certificate", 81, shot)
    gray = np.asarray(Image.open(io.BytesIO(shotted.jpeg)).convert("L"))
    found = photo.find_page(gray)
    assert found is not None
    corners, share = found
    assert 0.4 < share < 0.9
    # Clockwise from the top left, each corner in its quarter of the frame.
    h, w = gray.shape
    assert corners[0][0] < w / 2 and corners[0][1] < h / 2 and corners[2][0] > w / 2 and corners[2][1] > h / 2
    scan = np.asarray(birth_certificate(81, level=0.5).image.reduce(4))
    assert photo.find_page(scan) is None  # a scan fills its frame: nothing to undo


def test_even_light_takes_a_shadow_off_the_paper() -> None:
    rng = np.random.default_rng(1)
    paper = np.full((800, 600), 230.0)
    paper[300:310, 100:500] = 40  # a line of ink
    shade = np.linspace(1.0, 0.45, 600)[None, :]  # light falling off to the right
    shaded = np.clip(paper * shade + rng.normal(0, 2, paper.shape), 0, 255).astype(np.uint8)
    flat = photo.even_light(shaded)
    left, right = flat[100:200, 20:120].mean(), flat[100:200, 480:580].mean()
    assert abs(left - right) < 12 and min(left, right) > 220  # the paper is even and white again
    assert flat[303:307, 200:400].mean() < 110  # and the ink stays dark


@pytest.mark.parametrize("sideways", [False, True])
def test_a_phone_photo_is_read_into_its_fields(tmp_path: Path, sideways: bool) -> None:
    shot = Shot(tilt=0.07, shadow=0.4, side_light=0.3, blur=0.8, sideways=sideways, frame=SMALL)
    shotted = phone_photo("death_notice", 83 + sideways, shot)
    res = digitize_file(shotted.save(tmp_path / "photo.jpg"), tmp_path / "out")
    page = res.pages[0]
    # Held sideways, the flattened page is turned upright by the orientation step (by 90, or by
    # 180 when the corners' order already brought it to portrait upside down).
    assert page.source == "photo" and (page.rotation != 0) == sideways
    assert any("phone photo" in n for n in res.notes)
    truth = _truth(shotted.form.fields)
    right = sum(res.fields.get(k, {}).get("value") == v for k, v in truth.items())
    assert right >= len(truth) - 1, {k: res.fields.get(k, {}).get("value") for k in truth}
