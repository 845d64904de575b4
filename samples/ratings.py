"""Synthetic satisfaction ratings for the demo: some citizens rate their delivered dossiers, as they
would from the status page (lienthong.citizen.ratings), mostly satisfied, a few not."""

from __future__ import annotations

import random
from collections.abc import Sequence

from sqlalchemy import select

from lienthong.citizen import ratings
from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.dossier import Status


def rate_delivered(codes: Sequence[str], *, seed: int, share: float = 0.7) -> int:
    """Rate about ``share`` of the delivered dossiers among ``codes``; returns how many were rated."""
    rng = random.Random(seed)
    cfg = ratings.get_config()
    rated = 0
    with session_scope() as s:
        rows = s.execute(select(DossierRow).where(DossierRow.code.in_(list(codes)),
                                                  DossierRow.status == Status.RETURNED)
                         .order_by(DossierRow.code)).scalars().all()
        for row in rows:
            if rng.random() > share or ratings.existing(s, row.code) is not None:
                continue
            level = rng.choices([3, 2, 1], weights=[6, 3, 1])[0]
            answers = {q.id: level if rng.random() < 0.8 else rng.choice([3, 2])
                       for q in cfg.applies(row.channel) if q.required or rng.random() < 0.5}
            ratings.rate(s, row, answers, source="demo")
            rated += 1
    return rated
