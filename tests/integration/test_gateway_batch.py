"""Group commit on PostgreSQL: one batch of new dossiers, written together, keeps every per-request rule."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow, InboxRow, StatusHistory
from lienthong.gateway import dossiers, inbox
from lienthong.gateway.errors import IdempotencyConflict, NotFound, ReplayedNonce
from lienthong.gateway.models import GatewayNonce
from lienthong.gateway.signing import body_digest
from lienthong.gateway.views import status_path
from lienthong.payloads import Submission
from tests.integration.gateway_helpers import submission_json

pytestmark = pytest.mark.integration


def work(nonce: str, key: str, seed: int, agency: str = "DVCQG") -> tuple[inbox.Delivery, inbox.Work]:
    body = submission_json(seed)
    d = inbox.Delivery(agency, nonce, key, "dossier", "/v1/dossiers", body_digest(body))
    return d, dossiers.dossier_work(d, Submission.model_validate(json.loads(body)), status_path)


def batch(items: list[tuple[inbox.Delivery, inbox.Work]]) -> list[inbox.Answer | Exception]:
    with session_scope() as s:
        return list(dossiers.within_all(s, items))


def count(model: type) -> int:
    with session_scope() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def refused(s):  # type: ignore[no-untyped-def]
    raise NotFound("nothing", code="dossier_not_found")


@pytest.mark.parametrize("mixed", [False, True], ids=["dossiers only", "with other work"])
def test_one_batch_answers_each_request_as_if_it_came_alone(db, mixed):
    """Dossiers alone take PostgreSQL's four-round-trip path; beside other work, the general one."""
    (earlier,) = batch([work("nonce-earlier-1", "key-earlier", 1)])
    assert isinstance(earlier, inbox.Answer)
    other = [(inbox.Delivery("DVCQG", "nonce-other", "key-other", "supplement", "/", ""), refused)]
    out = batch([
        work("nonce-batch-a", "key-a", 2),  # new
        work("nonce-batch-b", "key-a", 2),  # the same request again in the same batch: replayed
        work("nonce-batch-a", "key-c", 3),  # nonce of the first, again: a replay
        work("nonce-batch-d", "key-a", 4),  # key-a with another body: a conflict
        work("nonce-batch-e", "key-earlier", 1),  # redelivery of a request of an earlier batch
        work("nonce-earlier-1", "key-f", 5),  # a nonce used in an earlier batch
        work("nonce-batch-g", "key-g", 6, agency="UBND_XA"),  # keys are per agency: new
        work("nonce-batch-h", "key-a", 7, agency="UBND_XA"),  # the same key, another agency: new
        *(other if mixed else []),
    ])
    a, b, c, d, e, f, g, h = out[:8]
    assert not mixed or isinstance(out[8], NotFound)
    assert isinstance(a, inbox.Answer) and not a.replayed
    assert isinstance(b, inbox.Answer) and b.replayed and b.body == a.body
    assert isinstance(c, ReplayedNonce) and isinstance(f, ReplayedNonce)
    assert isinstance(d, IdempotencyConflict)
    assert isinstance(e, inbox.Answer) and e.replayed and e.body == earlier.body
    assert isinstance(g, inbox.Answer) and isinstance(h, inbox.Answer)
    codes = [earlier.body["dossier_code"], a.body["dossier_code"], g.body["dossier_code"], h.body["dossier_code"]]
    assert sorted(int(code[-4:]) for code in codes) == [1, 2, 3, 4]  # no gap, no number used twice
    assert count(DossierRow) == count(InboxRow) == 4
    assert count(StatusHistory) == 8
    assert count(GatewayNonce) == 7 + mixed  # every distinct nonce, refused requests' included
    with session_scope() as s:
        answers = {r.dossier_code: r.response for r in s.execute(select(InboxRow)).scalars()}
        rows = s.execute(select(DossierRow)).scalars().all()
        assert answers == {x.body["dossier_code"]: x.body for x in (earlier, a, g, h)}
        for row in rows:
            history = s.execute(
                select(StatusHistory.to_status).where(StatusHistory.dossier_id == row.id).order_by(StatusHistory.id)
            ).scalars().all()
            assert history == [1, 2]
            components = s.execute(
                select(ComponentRow.code).where(ComponentRow.dossier_id == row.id).order_by(ComponentRow.id)
            ).scalars().all()
            assert components == [c["code"] for c in row.payload["components"]]
            assert row.idempotency_key in {"DVCQG:key-earlier", "DVCQG:key-a", "UBND_XA:key-g", "UBND_XA:key-a"}
