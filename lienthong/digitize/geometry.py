"""Page geometry from a small grayscale copy: skew angle and whether text lines run vertically.

Cheap on purpose (a few milliseconds on a quarter-scale page): it runs on every scanned page, beside
tesseract, and must not eat into tesseract's CPU time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Geometry:
    skew_degrees: (
        float  # rotate the page by minus this (counter-clockwise positive) to straighten it
    )
    vertical_text: bool  # text lines run top to bottom: the page lies on its side (90/270)
    ink_share: float  # share of dark pixels; ~0 for a blank page


def _ink(gray: np.ndarray) -> np.ndarray:
    """Dark pixels by Otsu's threshold (computed on the histogram, so it costs one pass)."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    mean = m0[-1] / total
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean * w0 - m0) ** 2 / (w0 * w1)
    t = int(np.nanargmax(between)) if np.isfinite(between).any() else 128
    return gray <= min(t, 200)


def _profile_energy(rows: np.ndarray, cols: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Energy of the row projection after shearing by each angle: peaks when lines are level."""
    out = np.empty(len(angles))
    for i, a in enumerate(angles):
        y = rows - cols * np.tan(np.radians(a))
        h = np.bincount((y - y.min()).astype(np.int64))
        out[i] = float(np.dot(h, h))
    return out


def _coarse_angle(rows: np.ndarray, cols: np.ndarray, max_deg: float) -> tuple[float, float]:
    """Best angle on a 0.25 degree grid, and its energy, from every fourth ink point: text lines
    have thousands of points, so the peak stays where it is, at a quarter of the cost."""
    coarse = np.arange(-max_deg, max_deg + 1e-9, 0.25)
    e = _profile_energy(rows[::4], cols[::4], coarse)
    i = int(np.argmax(e))
    return float(coarse[i]), float(e[i])


def _fine_angle(rows: np.ndarray, cols: np.ndarray, a0: float) -> float:
    fine = np.arange(a0 - 0.25, a0 + 0.25 + 1e-9, 0.05)
    return float(fine[int(np.argmax(_profile_energy(rows, cols, fine)))])


def analyse(gray: np.ndarray, max_deg: float = 5.0, max_points: int = 60_000) -> Geometry:
    """Skew and orientation hints of a grayscale page (any scale; angles do not depend on it)."""
    ink = _ink(gray)
    rows, cols = np.nonzero(ink)
    share = len(rows) / max(ink.size, 1)
    if len(rows) < 200 or share > 0.5:  # blank, or a photo/negative: nothing to level
        return Geometry(0.0, False, share)
    if len(rows) > max_points:
        step = len(rows) // max_points + 1
        rows, cols = rows[::step], cols[::step]
    rows = rows.astype(np.float64)
    cols = cols.astype(np.float64)
    a0, e_h = _coarse_angle(rows, cols, max_deg)
    _, e_v = _coarse_angle(cols, rows, max_deg)  # only its energy counts: no fine search
    angle = _fine_angle(rows, cols, a0)
    # Image rows grow downwards, so a line rising to the right has a negative shear slope.
    return Geometry(round(-angle, 2), e_v > 1.25 * e_h, share)


def upright_score(gray: np.ndarray, skew_degrees: float = 0.0) -> float:
    """Positive when text stands upright, negative when it is upside down (range -1..1, 0 = unsure).

    Within each text line, Latin script puts more ink above the x-height band (ascenders, capitals,
    and in Vietnamese the tone marks and circumflexes) than below it (only g, p, q, y descend).
    Needs at least quarter scale at 300 DPI so the bands are a few pixels tall.
    """
    ink = _ink(gray)
    rows, cols = np.nonzero(ink)
    if len(rows) < 500 or len(rows) / max(ink.size, 1) > 0.5:
        return 0.0
    y = rows - cols * np.tan(np.radians(-skew_degrees))
    prof = np.bincount((y - y.min()).astype(np.int64)).astype(np.float64)
    on = prof > max(prof.max() * 0.04, 2.0)
    above = below = 0.0
    i, n = 0, len(prof)
    while i < n:
        if not on[i]:
            i += 1
            continue
        j = i
        while j < n and on[j]:
            j += 1
        line = prof[i:j]
        if 3 <= len(line) <= 60:
            core = np.nonzero(line >= 0.5 * line.max())[0]
            top, bottom = core[0], core[-1]
            above += float(line[:top].sum())
            below += float(line[bottom + 1 :].sum())
        i = j
    total = above + below
    return 0.0 if total == 0 else (above - below) / total
