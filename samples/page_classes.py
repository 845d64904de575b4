"""Pages of the classes the digitization benchmark scores separately (issue 17 §4): upright scans,
pages fed rotated, skewed scans, faint copies, phone photos, ruled forms under a seal. Each is a
generated form with its ground truth, deterministic from its seed."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from samples.forms import Degradation, FormKind, SampleForm, make_form
from samples.hard_pages import HardPage, hard_page
from samples.photos import PhotoForm, phone_photo


def _kind(seed: int) -> FormKind:
    return "birth_certificate" if seed % 2 == 0 else "death_notice"


def _base(seed: int, level: float) -> Degradation:
    return Degradation.random(random.Random(f"class-{seed}"), level=level)


def upright(seed: int) -> SampleForm:
    """A desk scan as it usually is: straight within half a degree, typical damage."""
    d = _base(seed, (0.5, 1.0)[seed % 2])
    return make_form(_kind(seed), seed, replace(d, skew_degrees=round(d.skew_degrees / 4, 2)))


def rotated(seed: int) -> SampleForm:
    """Fed sideways or upside down (90, 180 or 270 degrees)."""
    d = _base(seed, 0.5)
    return make_form(_kind(seed), seed, replace(d, rotation=(90, 180, 270)[seed % 3]))


def skewed(seed: int) -> SampleForm:
    """Put in crooked: 2.5 to 4.5 degrees either way."""
    rng = random.Random(f"skew-{seed}")
    angle = rng.uniform(2.5, 4.5) * rng.choice((-1, 1))
    return make_form(_kind(seed), seed, replace(_base(seed, 0.5), skew_degrees=round(angle, 2)))


def low_contrast(seed: int) -> SampleForm:
    """A faint photocopy: grey ink on grey paper."""
    d = _base(seed, 0.5)
    return make_form(_kind(seed), seed, replace(d, contrast=0.35, skew_degrees=0.0))


def photo(seed: int) -> PhotoForm:
    """A phone photo of the printed form (samples/photos.py): perspective, shadow, uneven light."""
    return phone_photo(_kind(seed), seed)


def ruled_seal(seed: int) -> HardPage:
    """A ruled form with a red seal over the signature, a stamp and an English title line."""
    return hard_page(_kind(seed), seed)


CLASSES: dict[str, Callable[[int], SampleForm | PhotoForm | HardPage]] = {
    "upright": upright,
    "rotated": rotated,
    "skewed": skewed,
    "low_contrast": low_contrast,
    "photo": photo,
    "ruled_seal": ruled_seal,
}
