"""The desk-digest flow against a local SMTP server: one mail per office and day, no clear id."""

from __future__ import annotations

import email
import json
import re
import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select

from flows.desk_digest import desk_digest
from integrations.settings import Settings, get_settings
from integrations.store.desk_accounts import add_account, disable_account
from integrations.store.desk_digest import DIGEST
from integrations.store.engine import get_engine, make_engine, upgrade
from integrations.store.handoffs import create_handoffs, escalate_overdue
from integrations.store.outbox import (
    SendResult,
    pending_deliveries,
    queue_deliveries,
    record_deliveries,
)
from models.checks import Finding
from models.forkopimcam import parse_forkopimcam
from models.handoffs import HandoffKind, Office
from models.identity import id_token, make_nik
from models.workdays import WorkCalendar
from tasks.desk_digest import send_digests

CAL = WorkCalendar()
LONG_AGO = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
YESTERDAY = datetime(2026, 11, 4, 2, 0, tzinfo=UTC)
# Thursday 5 November 2026, 07:00 WIB: the scheduled time.
NOW = datetime(2026, 11, 5, 0, 0, tzinfo=UTC)
DESK_OFFICES = {"kecamatan:35.78.01": "desk", "35.78.02": "both"}
MAILS = {
    "kec.karangpilang@surabaya.go.id": "kecamatan:35.78.01",
    "staf.karangpilang@surabaya.go.id": "kecamatan:35.78.01",
    "kec.wonocolo@surabaya.go.id": "kecamatan:35.78.02",
    "kec.rungkut@surabaya.go.id": "kecamatan:35.78.03",  # on the inbox: no digest
    "dinsos@surabaya.go.id": "kabupaten:35.78",
    "ops@jatimprov.go.id": "province:35",
}
NIKS = [make_nik("35.78.01", date(1980, 1, 1 + i), "P", 10 + i) for i in range(6)]
LONG_DIGITS = re.compile(r"(?<![0-9A-Fa-f])[0-9]{16}(?![0-9A-Fa-f])")


class _Mail:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _finding(i: int, office: str) -> Finding:
    return Finding(
        HandoffKind.BLT_PKH_OVERLAP,
        id_token(NIKS[i], b"k"),
        "2026-Q4",
        (Office.parse(office),),
        {"programmes": "PKH", "desa_codes": "35.78.01.1001"},
    )


def _deliver(engine: Engine, at: datetime) -> None:
    with engine.begin() as conn:
        queue_deliveries(conn, at)
        keys = pending_deliveries(conn)
        record_deliveries(conn, [SendResult(k, receipt_id=f"R-{k[:8]}") for k in keys], at)


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        # October's handoffs are overdue; one of them is escalated to Kota Surabaya.
        create_handoffs(
            conn,
            [_finding(0, "kecamatan:35.78.01"), _finding(1, "kecamatan:35.78.02")],
            sender="checks",
            now=LONG_AGO,
            calendar=CAL,
        )
    _deliver(engine, LONG_AGO)
    with engine.begin() as conn:
        escalate_overdue(conn, YESTERDAY, CAL)
        create_handoffs(
            conn,
            [
                _finding(i, o)
                for i, o in (
                    (2, "kecamatan:35.78.01"),
                    (3, "kecamatan:35.78.03"),
                    (4, "kecamatan:35.78.02"),
                )
            ],
            sender="checks",
            now=YESTERDAY,
            calendar=CAL,
        )
        for address, office in MAILS.items():
            add_account(conn, address, office, "officer", LONG_AGO, password="kenanga-merah-12")
        add_account(conn, "lama@surabaya.go.id", "kecamatan:35.78.01", "officer", LONG_AGO)
        disable_account(conn, "lama@surabaya.go.id", LONG_AGO)
    _deliver(engine, YESTERDAY)


@pytest.fixture
def smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_Mail, Engine]]:
    """A local SMTP server and a seeded store, the hub's settings pointed at both."""
    mail = _Mail()
    port = _free_port()
    server = Controller(mail, hostname="127.0.0.1", port=port)
    server.start()
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    upgrade(engine)
    _seed(engine)
    for name, value in {
        "CETTAR_DATABASE_URL": url,
        "CETTAR_SMTP_HOST": "127.0.0.1",
        "CETTAR_SMTP_PORT": str(port),
        "CETTAR_SMTP_STARTTLS": "false",
        "CETTAR_DESK_URL": "https://meja.jatimprov.go.id",
        "CETTAR_DESK_OFFICES": json.dumps(DESK_OFFICES),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        yield mail, engine
    finally:
        server.stop()
        engine.dispose()
        get_engine().dispose()
        get_settings.cache_clear()
        get_engine.cache_clear()


def _messages(mail: _Mail) -> dict[str, Message]:
    out = {}
    for envelope in mail.messages:
        message = email.message_from_bytes(envelope.content)
        out[",".join(sorted(envelope.rcpt_tos))] = message
    return out


def test_each_desk_office_and_kabupaten_gets_one_digest_a_day(
    prefect_api: str, smtp: tuple[_Mail, Engine]
) -> None:
    mail, engine = smtp
    state = desk_digest(as_of=NOW, return_state=True)
    assert state.is_completed(), state.message
    counts = state.result()
    assert counts["sent_office"] == 2 and counts["sent_escalations"] == 1
    got = _messages(mail)
    assert set(got) == {
        "kec.karangpilang@surabaya.go.id,staf.karangpilang@surabaya.go.id",
        "kec.wonocolo@surabaya.go.id",
        "dinsos@surabaya.go.id",
    }
    karangpilang = got["kec.karangpilang@surabaya.go.id,staf.karangpilang@surabaya.go.id"]
    body = karangpilang.get_payload(decode=True).decode()
    assert "Kecamatan Karang Pilang (35.78.01)" in str(karangpilang["Subject"])
    # Yesterday's handoff is new; October's went up to the kabupaten.
    assert "Baru sejak kemarin:          1" in body
    assert "https://meja.jatimprov.go.id/handoffs?status=overdue" in body
    kab = got["dinsos@surabaya.go.id"].get_payload(decode=True).decode()
    assert "Eskalasi yang masih terbuka: 2" in kab
    assert "https://meja.jatimprov.go.id/handoffs?status=escalated" in kab
    # No clear NIK/No. KK, no 16-digit id at all, in any header or body.
    for envelope in mail.messages:
        text = envelope.content.decode()
        assert not LONG_DIGITS.search(text), text
        assert not any(nik in text for nik in NIKS)
    # A second run the same day sends nothing.
    again = desk_digest(as_of=NOW + timedelta(hours=3), return_state=True)
    assert again.is_completed(), again.message
    assert again.result()["already_sent"] == 3
    assert len(mail.messages) == 3
    with engine.connect() as conn:
        rows = conn.execute(select(DIGEST.c.office, DIGEST.c.kind, DIGEST.c.status)).all()
    assert sorted(rows) == [
        ("kabupaten:35.78", "escalations", "sent"),
        ("kecamatan:35.78.01", "office", "sent"),
        ("kecamatan:35.78.02", "office", "sent"),
    ]


def test_a_refused_digest_is_sent_by_the_next_run(smtp: tuple[_Mail, Engine]) -> None:
    mail, engine = smtp
    settings = Settings()

    def refuse(*_args: Any) -> int:
        raise smtplib.SMTPServerDisconnected("gone")

    first = send_digests(engine, settings, NOW, CAL, mailer=refuse)
    assert first["failed"] == 3 and "sent_office" not in first
    second = send_digests(engine, settings, NOW, CAL)
    assert (second["sent_office"], second["sent_escalations"]) == (2, 1)
    assert len(mail.messages) == 3
    # The next working day is a new day: the escalations still wait, the offices have
    # nothing new, due soon or overdue, so they get no mail about nothing.
    friday = send_digests(engine, settings, NOW + timedelta(days=1), CAL)
    assert friday == {"nothing_to_report": 2, "recipients": 1, "sent_escalations": 1}
    assert len(mail.messages) == 4


FORUM_FILE = """# test copy of models/data/forkopimcam.csv
kecamatan_code,kecamatan,role,email
35.78.01,Karang Pilang,camat,camat@kec-karangpilang.surabaya.go.id
35.78.01,Karang Pilang,kapolsek,polsek.karangpilang@polri.go.id
35.78.01,Karang Pilang,danramil,koramil.karangpilang@tniad.mil.id
35.78.01,Karang Pilang,danramil,danramil-357801@forkopimcam.example
35.78.02,Wonocolo,camat,camat-357802@forkopimcam.example
"""


def _notice(engine: Engine, forum: str, at: datetime) -> None:
    kec = forum.partition(":")[2]
    with engine.begin() as conn:
        create_handoffs(
            conn,
            [
                Finding(
                    HandoffKind.HEALTH_RED_ZONE_NOTICE,
                    kec,
                    "dbd:2026-W44",
                    (Office.parse(forum),),
                    {"kecamatan_code": kec, "condition": "dbd", "new_cases": 41},
                )
            ],
            sender="puskesmas",
            now=at,
            calendar=CAL,
        )
    _deliver(engine, at)


def test_a_forkopimcam_digest_goes_to_its_members_and_accounts(
    smtp: tuple[_Mail, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    mail, engine = smtp
    forums = parse_forkopimcam(FORUM_FILE)
    monkeypatch.setattr("integrations.store.desk_digest.forkopimcam_contacts", lambda: forums)
    # Karang Pilang's forum has real addresses and an account; Wonocolo's only a placeholder.
    _notice(engine, "forkopimcam:35.78.01", YESTERDAY)
    _notice(engine, "forkopimcam:35.78.02", YESTERDAY)
    with engine.begin() as conn:
        add_account(
            conn,
            "sekretariat.forkopimcam@surabaya.go.id",
            "forkopimcam:35.78.01",
            "officer",
            LONG_AGO,
            password="kenanga-merah-12",
        )
    # No CETTAR_DESK_OFFICES key names a forum: it is on the desk all the same.
    counts = send_digests(engine, Settings(), NOW, CAL)
    assert counts["sent_office"] == 3, counts
    got = _messages(mail)
    forum = got[
        "camat@kec-karangpilang.surabaya.go.id,koramil.karangpilang@tniad.mil.id,"
        "polsek.karangpilang@polri.go.id,sekretariat.forkopimcam@surabaya.go.id"
    ]
    assert "Forkopimcam Karang Pilang (35.78.01)" in str(forum["Subject"])
    body = forum.get_payload(decode=True).decode()
    assert "Baru sejak kemarin:          1" in body
    assert "health_red_zone_notice, tenggat" in body
    # A placeholder is never mailed, and a forum with nothing else has no recipient.
    assert not any("forkopimcam.example" in ",".join(e.rcpt_tos) for e in mail.messages)
    assert not any(
        "Wonocolo" in str(m["Subject"]) and "Forkopimcam" in str(m["Subject"]) for m in got.values()
    )
    with engine.connect() as conn:
        rows = conn.execute(select(DIGEST.c.office, DIGEST.c.recipients)).all()
    assert ("forkopimcam:35.78.01", 4) in rows
    for envelope in mail.messages:
        assert not LONG_DIGITS.search(envelope.content.decode())
