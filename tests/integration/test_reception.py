import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from sqlalchemy import select, text

from lienthong.db import get_engine, session_scope
from lienthong.db.models import DossierRow, StatusHistory
from lienthong.db.store import next_sequence
from lienthong.dossier import Status
from lienthong.reception import receive
from samples.dossiers import make_submission

pytestmark = pytest.mark.integration
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


def test_reception_gives_a_circular_01_code_and_an_appointment(db):
    receipt = receive(make_submission("lien-thong-khai-sinh", random.Random(1), T))
    assert receipt.dossier_code.startswith("000.00.06.H56-260310-")
    assert receipt.due_at.isoformat() == "2026-03-13T17:00:00+07:00"  # 3 working days
    with session_scope() as s:
        row = s.execute(select(DossierRow)).scalar_one()
        assert row.status == Status.ACCEPTED and row.procedure_version == "2024-06-10"
        history = s.execute(select(StatusHistory.to_status).order_by(StatusHistory.id)).scalars().all()
        assert history == [1, 2]


def test_sequence_numbers_are_per_unit_per_day(db):
    with session_scope() as s:
        a = [next_sequence(s, "000.00.06.H56", T.date()) for _ in range(3)]
        b = next_sequence(s, "000.00.07.H56", T.date())
        c = next_sequence(s, "000.00.06.H56", T.date().replace(day=11))
    assert a == [1, 2, 3] and b == 1 and c == 1


def test_parallel_writers_never_get_the_same_dossier_code(db):
    subs = [make_submission("lien-thong-khai-tu", random.Random(i), T) for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda sub: receive(sub).dossier_code, subs))
    assert len(set(codes)) == 40
    assert sorted(int(c[-4:]) for c in codes) == list(range(1, 41))


def test_redelivery_with_the_same_idempotency_key_returns_the_same_dossier(db):
    sub = make_submission("chuyen-nhuong-dat", random.Random(3), T)
    first = receive(sub, idempotency_key="DVCQG:abc")
    again = receive(sub, idempotency_key="DVCQG:abc")
    assert again.dossier_code == first.dossier_code and first.created and not again.created
    with session_scope() as s:
        assert s.execute(text("select count(*) from dossiers")).scalar_one() == 1


def test_status_history_is_append_only_in_the_database(db):
    receive(make_submission("lien-thong-khai-sinh", random.Random(4), T))
    with pytest.raises(Exception, match="append-only"), get_engine().begin() as conn:
        conn.execute(text("update status_history set actor = 'x'"))
    with pytest.raises(Exception, match="append-only"), get_engine().begin() as conn:
        conn.execute(text("delete from status_history"))


def test_times_are_stored_with_their_offset(db):
    receive(make_submission("lien-thong-khai-sinh", random.Random(5), T))
    with get_engine().connect() as conn:
        stored = conn.execute(text("select received_at at time zone 'Asia/Ho_Chi_Minh' from dossiers")).scalar_one()
    assert stored.replace(tzinfo=None) == T.replace(tzinfo=None)
