"""A desk on a real SQLite file store: people in the registry, delivered handoffs, accounts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from desk.app import create_app
from desk.config import DeskConfig
from integrations.settings import get_settings
from integrations.store.desk_accounts import add_account
from integrations.store.engine import make_engine, upgrade
from integrations.store.handoffs import create_handoffs, escalate_overdue
from integrations.store.outbox import (
    SendResult,
    pending_deliveries,
    queue_deliveries,
    record_deliveries,
)
from integrations.store.tables import HOUSEHOLD, MEMBER
from models.checks import Finding
from models.handoffs import HandoffKind, Office
from models.identity import id_token, make_nik, make_no_kk
from models.workdays import WorkCalendar

KEY = b"desk-test-key"
CAL = WorkCalendar()
# Thursday 5 November 2026, 10:00 WIB: the handoffs of Tuesday are due next week.
NOW = datetime(2026, 11, 5, 3, 0, tzinfo=UTC)
CREATED = datetime(2026, 11, 3, 1, 0, tzinfo=UTC)
LONG_AGO = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
PASSWORD = "kenanga-merah-12"

OFFICER = "kec.karangpilang@surabaya.go.id"
VIEWER = "pantau.karangpilang@surabaya.go.id"
OTHER_OFFICER = "kec.wonocolo@surabaya.go.id"
KABUPATEN = "dinsos@surabaya.go.id"
PROVINCE = "ops@jatimprov.go.id"
NEWCOMER = "baru.karangpilang@surabaya.go.id"

ACCOUNTS = {
    OFFICER: ("kecamatan:35.78.01", "officer"),
    VIEWER: ("kecamatan:35.78.01", "viewer"),
    OTHER_OFFICER: ("kecamatan:35.78.02", "officer"),
    KABUPATEN: ("kabupaten:35.78", "officer"),
    PROVINCE: ("province:35", "admin"),
}

# A desa's accounts, for its spreadsheet uploads (the `uploads` fixture adds them).
DESA = "35.07.01.2001"
DESA_OFFICER = "kades.sukamaju@malang.go.id"
DESA_VIEWER = "pantau.sukamaju@malang.go.id"
NEIGHBOUR = "kades.tetangga@malang.go.id"
DESA_ACCOUNTS = {
    DESA_OFFICER: (f"desa:{DESA}", "officer"),
    DESA_VIEWER: (f"desa:{DESA}", "viewer"),
    NEIGHBOUR: ("desa:35.07.01.2002", "officer"),
}

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Resident:
    """A registry member a handoff is about, with the clear ids the pages must not show."""

    name: str
    nik: str
    no_kk: str
    token: str


@dataclass
class Desk:
    """The seeded store and a way to open browsers on the desk."""

    engine: Engine
    url: str
    handoffs: dict[str, str]
    residents: dict[str, Resident]
    newcomer_password: str
    clock: list[datetime]
    config: DeskConfig
    clients: list[TestClient] = field(default_factory=list)

    def client(self) -> TestClient:
        """A fresh browser (its own cookies) on one app over the store."""
        client = TestClient(self.app, base_url="http://desk.test", follow_redirects=False)
        self.clients.append(client)
        return client

    @property
    def app(self) -> FastAPI:
        if not hasattr(self, "_app"):
            self._app = create_app(
                self.engine, self.config, calendar=CAL, clock=lambda: self.clock[0]
            )
        return self._app


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Sign in through the form as a browser does; returns the POST's response."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def _resident(i: int, desa: str) -> tuple[Resident, dict[str, object], dict[str, object]]:
    nik = make_nik(desa[:8], date(1984, 2, 10 + i), "P", 100 + i)
    no_kk = make_no_kk(desa[:8], date(2016, 3, 1), 200 + i)
    name = f"Sri Wahyuni {i}"
    at = CREATED
    household = {
        "id": f"HH-D{i}",
        "no_kk": no_kk,
        "kk_token": id_token(no_kk, KEY),
        "desa_code": desa,
        "kecamatan_code": desa[:8],
        "kabupaten_code": desa[:5],
        "address": f"Jl. Melati {i} RT 0{i}/RW 02",
        "desil": 1,
        "member_count": 1,
        "updated_at": at,
        "synced_at": at,
    }
    member = {
        "id": f"M-D{i}",
        "household_id": f"HH-D{i}",
        "nik": nik,
        "nik_token": id_token(nik, KEY),
        "name": name,
        "sex": "P",
        "birth_date": date(1984, 2, 10 + i),
        "relationship": "kepala",
        "status": "active",
        "updated_at": at,
    }
    return Resident(name, nik, no_kk, member["nik_token"]), household, member  # type: ignore[arg-type]


def _finding(resident: Resident, office: str, period: str = "2026-Q4") -> Finding:
    receiver = Office.parse(office)
    return Finding(
        kind=HandoffKind.BLT_PKH_OVERLAP,
        subject_token=resident.token,
        period=period,
        receivers=(receiver,),
        evidence={"programmes": "PKH", "blt_record_ids": "BLT-1", "desa_codes": "35.78.01.1001"},
    )


def _deliver(engine: Engine, at: datetime) -> None:
    with engine.begin() as conn:
        queue_deliveries(conn, at)
        keys = pending_deliveries(conn)
        record_deliveries(conn, [SendResult(k, receipt_id=f"R-{k[:8]}") for k in keys], at)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    """A migrated SQLite store seeded for the desk, and the desk app over it."""
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    engine = make_engine(url)
    upgrade(engine)
    residents: dict[str, Resident] = {}
    places = {
        "own": "35.78.01.1001",
        "own2": "35.78.01.1002",
        "late": "35.78.01.1001",
        "other": "35.78.02.1001",
        "far": "35.07.01.2001",
    }
    households, members = [], []
    for i, (name, desa) in enumerate(places.items(), start=1):
        resident, household, member = _resident(i, desa)
        residents[name] = resident
        households.append(household)
        members.append(member)
    offices = {
        "own": "kecamatan:35.78.01",
        "own2": "kecamatan:35.78.01",
        "late": "kecamatan:35.78.01",
        "other": "kecamatan:35.78.02",
        "far": "kecamatan:35.07.01",
    }
    findings = {name: _finding(residents[name], office) for name, office in offices.items()}
    with engine.begin() as conn:
        conn.execute(HOUSEHOLD.insert(), households)
        conn.execute(MEMBER.insert(), members)
        create_handoffs(conn, [findings["late"]], sender="checks", now=LONG_AGO, calendar=CAL)
    _deliver(engine, LONG_AGO + timedelta(hours=1))
    with engine.begin() as conn:
        # Overdue since October: escalated to Kota Surabaya.
        escalate_overdue(conn, NOW - timedelta(days=1), CAL)
        create_handoffs(
            conn,
            [f for name, f in findings.items() if name != "late"],
            sender="checks",
            now=CREATED,
            calendar=CAL,
        )
    _deliver(engine, CREATED + timedelta(hours=1))
    with engine.begin() as conn:
        for email, (office, role) in ACCOUNTS.items():
            add_account(conn, email, office, role, CREATED, password=PASSWORD)
        newcomer = add_account(conn, NEWCOMER, "kecamatan:35.78.01", "officer", CREATED)
    handoffs = {name: f.keys[0] for name, f in findings.items()}
    config = DeskConfig(secret_key="desk-test-secret", login_max_failures=3, login_window_s=600)
    state = Desk(engine, url, handoffs, residents, newcomer, [NOW], config)
    try:
        yield state
    finally:
        for client in state.clients:
            client.close()
        engine.dispose()


@pytest.fixture
def browser(desk: Desk) -> Callable[[str], TestClient]:
    """Open a browser signed in as the given account."""

    def open_as(email: str) -> TestClient:
        client = desk.client()
        response = sign_in(client, email)
        assert response.status_code == 303, response.text[:300]
        return client

    return open_as


@pytest.fixture
def uploads(
    desk: Desk,
    prefect_api: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Desk]:
    """The desk with a desa's officer and viewer and a neighbouring desa's officer."""
    # The hub's settings name the desk's store (the guard's name comes from it) and the
    # session's Prefect server; the fixture's end puts the environment back.
    monkeypatch.setenv("CETTAR_DATABASE_URL", desk.url)
    monkeypatch.setenv("CETTAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    get_settings.cache_clear()
    with desk.engine.begin() as conn:
        for email, (office, role) in DESA_ACCOUNTS.items():
            add_account(conn, email, office, role, CREATED, password=PASSWORD)
    yield desk
    get_settings.cache_clear()
