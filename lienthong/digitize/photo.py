"""Phone photos of a paper, made fit to read: find the page in the frame and undo the perspective,
then even out shadows and uneven light. Orientation is fixed afterwards like any scan's (see
:func:`lienthong.digitize.ocr.orientation`). OpenCV (headless) does the image work.

A flatbed scan fills its frame edge to edge; a photo shows the table around the page. Only an
image in which a bright four-cornered page is found with background around it is treated as a
photo, so scans go through untouched.
"""

from __future__ import annotations

import numpy as np

A4_RATIO = 297.0 / 210.0


def _order(pts: np.ndarray) -> np.ndarray:
    """Corners clockwise from the top left."""
    s, d = pts.sum(axis=1), np.diff(pts, axis=1).ravel()
    return np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], np.float32)


def _quad(contour: np.ndarray) -> np.ndarray:
    """Four corners of a page outline: its polygon if it simplifies to a convex quadrilateral,
    else the smallest rotated rectangle around it (a torn or curled edge)."""
    import cv2

    hull = cv2.convexHull(contour)
    peri = cv2.arcLength(hull, True)
    for eps in (0.02, 0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4 and cv2.isContourConvex(approx):
            return approx.reshape(4, 2).astype(np.float32)
    return cv2.boxPoints(cv2.minAreaRect(contour)).astype(np.float32)


def find_page(
    gray: np.ndarray, min_share: float = 0.2, max_share: float = 0.93
) -> tuple[np.ndarray, float] | None:
    """The page's corners in ``gray`` (its pixel coordinates) and its share of the frame, or None
    when no page with background around it is found: a scan, which fills its frame (a share above
    ``max_share``), or a frame where nothing page-like is (below ``min_share``).

    The page's outline is its sharpest long edge: edges (Canny) joined up, the largest outer
    contour. A shadow's edge is soft and does not cut the page in two, as a brightness threshold
    would; the threshold (Otsu) is the fallback for a page on a table of its own brightness."""
    import cv2

    h, w = gray.shape
    scale = 800.0 / max(h, w)
    small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    area = float(small.shape[0] * small.shape[1])
    edges = cv2.dilate(cv2.Canny(small, 40, 120), np.ones((3, 3), np.uint8), iterations=2)
    _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8))
    for mask in (edges, bright):
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            continue
        quad = _quad(max(contours, key=lambda c: cv2.contourArea(cv2.convexHull(c))))
        share = cv2.contourArea(quad) / area
        if min_share <= share <= max_share and _table_around(small, quad):
            return _order(quad / scale), share
    return None


def _table_around(small: np.ndarray, quad: np.ndarray) -> bool:
    """Is what lies around the quadrilateral darker than the paper inside it? A table is; the
    white margin of a scan around its block of text is not."""
    import cv2

    inside = np.zeros(small.shape, np.uint8)
    cv2.fillConvexPoly(inside, quad.astype(np.int32), 1)
    paper = np.percentile(small[inside == 1], 75)
    around = np.median(small[inside == 0]) if (inside == 0).any() else paper
    return bool(around < 0.8 * paper)


def even_light(gray: np.ndarray) -> np.ndarray:
    """Divide out the paper's brightness (shadows, a lamp on one side): the background is what a
    large closing leaves of the page (the ink is thin, the paper everywhere), then the page is
    stretched so paper is white and ink keeps its contrast."""
    import cv2

    h, w = gray.shape
    k = max(15, (min(h, w) // 40) | 1)
    small = cv2.resize(gray, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k // 4 * 2 + 1,) * 2))
    bg = cv2.GaussianBlur(bg, (0, 0), k / 8)
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    flat = gray.astype(np.float32) / np.maximum(bg, 1.0) * 255.0
    return np.clip(flat, 0, 255).astype(np.uint8)


def flatten(gray: np.ndarray, corners: np.ndarray, target_dpi: int = 300) -> np.ndarray:
    """The page whose corners are ``corners`` (see :func:`find_page`) as an A4 page seen from
    straight above, at least ``target_dpi`` (upright or lying as photographed), evenly lit."""
    import cv2

    tl, tr, br, bl = corners
    width = max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))
    height = max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))
    out_long = round(max(float(width), float(height), 297 / 25.4 * target_dpi))
    out_short = round(out_long / A4_RATIO)
    size = (out_short, out_long) if height >= width else (out_long, out_short)
    dst = np.array([[0, 0], [size[0] - 1, 0], [size[0] - 1, size[1] - 1], [0, size[1] - 1]], np.float32)
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    page = cv2.warpPerspective(gray, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    flat = even_light(page)
    # The outline found runs along the paper's edge: a few pixels of table and the edge's shadow
    # stay in, long dark lines that would pass for text lines. Whiten a thin margin.
    e = max(2, round(0.012 * min(size)))
    flat[:e, :], flat[-e:, :], flat[:, :e], flat[:, -e:] = 255, 255, 255, 255
    return flat
