"""The desk's SQL area condition agrees with `models.desk.can_see`, Forkopimcam offices included."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from desk.store import access_of, area_condition
from integrations.store.handoffs import create_handoffs
from integrations.store.tables import HANDOFF
from models.checks import Finding
from models.desk import Account, DeskOffice, Role, can_see
from models.handoffs import HandoffKind, Office

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
RECEIVERS = (
    "kecamatan:35.78.01",
    "desa:35.78.01.1001",
    "kecamatan:35.78.02",
    "kecamatan:35.07.01",
    "agency:pkh",
    "forkopimcam:35.78.01",
    "forkopimcam:35.78.02",
    "forkopimcam:35.07.01",
)
ACCOUNTS = (
    "province:35",
    "kabupaten:35.78",
    "kecamatan:35.78.01",
    "desa:35.78.01.1001",
    "programme:pkh",
    "forkopimcam:35.78.01",
)


@pytest.mark.parametrize("office", ACCOUNTS)
def test_the_list_shows_what_the_rules_let_the_account_see(store: Engine, office: str) -> None:
    findings = [
        Finding(
            HandoffKind.HEALTH_RED_ZONE_NOTICE
            if key.startswith("forkopimcam:")
            else HandoffKind.BLT_PKH_OVERLAP,
            hashlib.sha256(key.encode()).hexdigest(),
            "2026-Q4",
            (Office.parse(key),),
            {"kecamatan_code": key.partition(":")[2][:8]} if key[0] != "a" else {},
        )
        for key in RECEIVERS
    ]
    with store.begin() as conn:
        create_handoffs(conn, findings, sender="checks", now=NOW)
    account = Account("petugas@example.go.id", DeskOffice.parse(office), Role.VIEWER)
    with store.connect() as conn:
        rows = conn.execute(select(HANDOFF)).all()
        listed = set(
            conn.execute(select(HANDOFF.c.office).where(area_condition(account))).scalars()
        )
    assert listed == {r.office for r in rows if can_see(account, access_of(r))}
    if office == "forkopimcam:35.78.01":
        assert listed == {"forkopimcam:35.78.01"}
    if office == "kecamatan:35.78.01":
        assert "forkopimcam:35.78.01" in listed and "forkopimcam:35.78.02" not in listed
