"""Phone photos of the sample forms, as citizens filing online take them: the page on a table seen
at an angle (perspective), a shadow across it, light stronger on one side, slight blur, sensor noise
and the phone's JPEG; sometimes the phone held sideways. Deterministic from the seed; each photo
keeps its form's ground truth. Test data, not a production path.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from samples.forms import Degradation, FormKind, SampleForm, make_form


@dataclass(frozen=True)
class Shot:
    """How the photo was taken."""

    tilt: float = 0.08  # how far the corners move, as a share of the frame (perspective)
    shadow: float = 0.45  # darkest share of light lost under the shadow band (0: none)
    side_light: float = 0.3  # light falling off across the page (0: even)
    blur: float = 1.0  # Gaussian sigma in pixels of the frame
    noise: float = 4.0
    quality: int = 80
    sideways: bool = False  # phone held in landscape: the page lies on its side in the frame
    frame: tuple[int, int] = (2250, 3000)  # width, height: a 6.75 Mpx phone photo, portrait

    @classmethod
    def random(cls, rng: random.Random) -> Shot:
        return cls(
            tilt=rng.uniform(0.03, 0.1),
            shadow=rng.uniform(0.2, 0.5),
            side_light=rng.uniform(0.1, 0.4),
            blur=rng.uniform(0.6, 1.3),
            noise=rng.uniform(2.0, 6.0),
            quality=rng.randint(70, 90),
            sideways=rng.random() < 0.25,
        )


def _table(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A wooden-looking table top (RGB float): a brown with grain and blotches."""
    base = np.array([120.0, 85.0, 55.0]) * rng.uniform(0.7, 1.2)
    grain = np.sin(np.linspace(0, rng.uniform(30, 80), w))[None, :] * 12
    blotch = rng.normal(0, 1, (h // 64 + 1, w // 64 + 1))
    blotch = np.asarray(Image.fromarray(((blotch + 3) * 40).clip(0, 255).astype(np.uint8)).resize((w, h)), float) - 120
    tex = (grain + blotch * 0.25)[..., None]
    return np.clip(base[None, None, :] + tex, 0, 255).astype(np.float32)


def take_photo(form: SampleForm, shot: Shot, seed: int) -> bytes:
    """The phone's JPEG of ``form``'s page (its clean print) taken as ``shot`` says."""
    import cv2

    from samples.forms import render

    rng = np.random.default_rng(seed)
    page = np.asarray(render(form.lines), dtype=np.float32) * 0.96 + 6  # A4 print at 300 DPI
    fw, fh = shot.frame
    if shot.sideways:
        fh, fw = fw, fh
    ph, pw = page.shape
    if shot.sideways:
        page = np.ascontiguousarray(np.rot90(page, k=1))
        ph, pw = pw, ph
    # Where the page's corners land: centred, ~80% of the frame, each corner pushed about.
    scale = 0.82 * min(fw / pw, fh / ph)
    cx, cy = fw / 2, fh / 2
    half = np.array([pw * scale / 2, ph * scale / 2])
    ideal = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32) * half + [cx, cy]
    jitter = rng.uniform(-1, 1, (4, 2)) * shot.tilt * np.array([fw, fh]) * 0.5
    dst = (ideal + jitter).astype(np.float32)
    src = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(page, m, (fw, fh), flags=cv2.INTER_AREA, borderValue=0)
    inside = cv2.warpPerspective(np.ones_like(page), m, (fw, fh), flags=cv2.INTER_LINEAR, borderValue=0)
    table = _table(rng, fh, fw)
    paper = np.repeat(warped[..., None], 3, axis=2) * np.array([1.0, 0.98, 0.93], np.float32)
    img = table * (1 - inside[..., None]) + paper * inside[..., None]
    # Light: falling off from one side, and a soft shadow band across (the phone, a hand).
    yy, xx = np.mgrid[0:fh, 0:fw].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    along = (np.cos(angle) * (xx - cx) + np.sin(angle) * (yy - cy)) / max(fw, fh)
    light = 1.0 - shot.side_light * (along + 0.5).clip(0, 1)
    if shot.shadow:
        a2 = rng.uniform(0, np.pi)
        d = np.cos(a2) * (xx - cx) + np.sin(a2) * (yy - cy) - rng.uniform(-0.2, 0.2) * fw
        band = 1.0 / (1.0 + np.exp(-d / (0.03 * fw)))  # a soft edge: one side in shadow
        light *= 1.0 - shot.shadow * band
    img *= light[..., None]
    if shot.blur:
        img = cv2.GaussianBlur(img, (0, 0), shot.blur)
    img += rng.normal(0, shot.noise, img.shape).astype(np.float32)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=shot.quality)
    return buf.getvalue()


@dataclass
class PhotoForm:
    form: SampleForm
    shot: Shot
    jpeg: bytes

    @property
    def kind(self) -> FormKind:
        return self.form.kind

    @property
    def text(self) -> str:
        return self.form.text

    @property
    def fields(self) -> dict[str, Any]:
        return self.form.fields

    def save(self, path: Path) -> Path:
        path.write_bytes(self.jpeg)
        return path


def phone_photo(kind: FormKind, seed: int, shot: Shot | None = None) -> PhotoForm:
    """Form ``kind`` of ``seed`` photographed (a random shot from the seed unless given)."""
    form = make_form(kind, seed, Degradation.none())
    shot = shot or Shot.random(random.Random(f"photo-{kind}-{seed}"))
    return PhotoForm(form, shot, take_photo(form, shot, seed))
