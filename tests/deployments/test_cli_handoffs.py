"""The `handoffs` operator commands: list, show and verify-audit, in text and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, update
from typer.testing import CliRunner

from deployments import cli_handoffs
from deployments.cli import app
from deployments.cli_handoffs import handoffs_app
from integrations.settings import get_settings
from integrations.store.engine import get_engine, make_engine, upgrade
from integrations.store.handoffs import create_handoffs, transition
from integrations.store.tables import AUDIT, HANDOFF
from models.checks import Finding
from models.handoffs import HandoffKind, Office
from models.identity import id_token, make_nik

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
NIK = make_nik("35.78.01", date(1975, 1, 9), "L", 3)
NIP = "197501092000031003"
KEC = Office.parse("kecamatan:35.78.01")
DESA = Office.parse("desa:35.78.01.1001")
runner = CliRunner()


@pytest.fixture
def handoffs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Engine, list[str]]]:
    """A SQLite store with three handoffs (one delivered and rejected) that the CLI reads."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("CETTAR_DATABASE_URL", url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    engine = make_engine(url)
    upgrade(engine)
    token = id_token(NIK, b"k")
    findings = [
        Finding(
            HandoffKind.BLT_PKH_OVERLAP,
            token,
            "2026-Q1",
            (KEC, DESA),
            {"programmes": "PKH", "desa_codes": DESA.code},
        ),
        Finding(
            HandoffKind.FARMER_OVER_LAND_CAP,
            token,
            "2026-MT1",
            (Office.parse("kecamatan:35.78.02"),),
            {"land_area_ha": 2.5},
        ),
    ]
    with engine.begin() as conn:
        create_handoffs(conn, findings, sender="checks", now=T0)
    ids = [k for f in findings for k in f.keys]
    with engine.begin() as conn:
        transition(conn, ids[0], "delivered", actor="hub", reason="", at=T0)
        transition(
            conn,
            ids[0],
            "rejected",
            actor=NIP,
            reason=f"bukan KPM, NIK {NIK}",
            at=T0 + timedelta(days=1),
        )
    yield engine, ids
    engine.dispose()
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_list_filters_and_prints_json(handoffs: tuple[Engine, list[str]]) -> None:
    _, (kec_id, desa_id, farmer_id) = handoffs
    cases = [
        ([], {kec_id, desa_id, farmer_id}),
        (["--office", "kecamatan:35.78.01"], {kec_id}),
        (["--state", "open"], {desa_id, farmer_id}),
        (["--kind", "farmer_over_land_cap"], {farmer_id}),
        (["--kecamatan", "35.78.01"], {kec_id, desa_id}),
        (["--kecamatan", "35.78.01", "--state", "rejected"], {kec_id}),
    ]
    for args, expected in cases:
        result = runner.invoke(handoffs_app, ["list", *args, "--json"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert {h["id"] for h in doc["handoffs"]} == expected, args
        assert doc["count"] == len(expected)
    assert NIK not in result.stdout and NIP not in result.stdout


def test_list_prints_a_table(
    handoffs: tuple[Engine, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Wide enough for whole ids and office keys (the test terminal is 80 columns).
    monkeypatch.setattr(cli_handoffs.console, "width", 200)
    result = runner.invoke(handoffs_app, ["list", "--kind", "farmer_over_land_cap"])
    assert result.exit_code == 0, result.output
    assert "farmer_over_land_cap" in result.output and "kecamatan:35.78.02" in result.output
    assert "1 handoffs" in result.output


@pytest.mark.parametrize("args", [["--state", "lost"], ["--office", "nowhere"]])
def test_list_refuses_bad_filters(handoffs: tuple[Engine, list[str]], args: list[str]) -> None:
    result = runner.invoke(handoffs_app, ["list", *args])
    assert result.exit_code == 2
    assert "bad filter" in result.output


def test_show_gives_the_audit_trail_masked(
    handoffs: tuple[Engine, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (kec_id, *_) = handoffs
    result = runner.invoke(handoffs_app, ["show", kec_id, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["handoff"]["state"] == "rejected"
    assert doc["handoff"]["evidence"] == {"programmes": "PKH", "desa_codes": DESA.code}
    assert [(a["from_state"], a["to_state"]) for a in doc["audit"]] == [
        (None, "open"),
        ("open", "delivered"),
        ("delivered", "rejected"),
    ]
    assert doc["audit"][-1]["reason"].startswith("bukan KPM, NIK 3578")
    assert NIK not in result.stdout and NIP not in result.stdout
    monkeypatch.setattr(cli_handoffs.console, "width", 200)
    text = runner.invoke(handoffs_app, ["show", kec_id])
    assert text.exit_code == 0, text.output
    assert "rejected" in text.output and "bukan KPM" in text.output
    assert NIK not in text.output and NIP not in text.output


def test_show_prints_stored_text_verbatim_never_as_markup(
    handoffs: tuple[Engine, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, (_, desa_id, _) = handoffs
    link, closing, emoji = "[x](javascript:alert(1))", "tidak [/bold] layak", "ok :x:"
    with engine.begin() as conn:
        conn.execute(
            update(HANDOFF)
            .where(HANDOFF.c.id == desa_id)
            .values(officer=link, decision_reason=closing)
        )
        transition(conn, desa_id, "delivered", actor=link, reason=f"{closing} {emoji}", at=T0)
    monkeypatch.setattr(cli_handoffs.console, "width", 250)
    result = runner.invoke(app, ["handoffs", "show", desa_id])
    assert result.exit_code == 0, result.output
    assert f"officer: {link}" in result.stdout
    assert f"decision_reason: {closing}" in result.stdout
    assert f"{closing} {emoji}" in result.stdout  # the audit trail's reason
    assert result.stdout.count(link) == 2  # the officer and the audit trail's actor


def test_show_unknown_handoff(handoffs: tuple[Engine, list[str]]) -> None:
    result = runner.invoke(handoffs_app, ["show", "0" * 32])
    assert result.exit_code == 1
    assert "no handoff" in result.output


@pytest.mark.parametrize("handoff_id", ["[/bold]", "[x](javascript:alert(1))"])
def test_show_echoes_an_unknown_id_verbatim(
    handoffs: tuple[Engine, list[str]], handoff_id: str
) -> None:
    result = runner.invoke(app, ["handoffs", "show", handoff_id])
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.splitlines() == [f"error: no handoff {handoff_id!r}"]


def test_a_bad_filter_is_echoed_verbatim(handoffs: tuple[Engine, list[str]]) -> None:
    result = runner.invoke(app, ["handoffs", "list", "--state", "[/bold]"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: bad filter: ") and "[/bold]" in line


def test_verify_audit_intact(handoffs: tuple[Engine, list[str]]) -> None:
    result = runner.invoke(handoffs_app, ["verify-audit", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["ok"], doc["checked"], doc["first_bad_seq"]) == (True, 5, None)
    text = runner.invoke(handoffs_app, ["verify-audit"])
    assert text.exit_code == 0 and "intact: 5 rows" in text.output


@pytest.mark.parametrize(
    ("tamper", "seq", "problem"),
    [
        (update(AUDIT).where(AUDIT.c.seq == 5).values(reason="approved"), 5, "row 5 edited"),
        (delete(AUDIT).where(AUDIT.c.seq == 2), 2, "row 2 missing"),
        (delete(AUDIT).where(AUDIT.c.seq == 5), 5, "row 5 missing"),
    ],
)
def test_verify_audit_reports_tampering(
    handoffs: tuple[Engine, list[str]], tamper: object, seq: int, problem: str
) -> None:
    engine, _ = handoffs
    with engine.begin() as conn:
        conn.execute(tamper)  # type: ignore[call-overload]
    result = runner.invoke(handoffs_app, ["verify-audit", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["first_bad_seq"] == seq and problem in doc["problem"]
    text = runner.invoke(handoffs_app, ["verify-audit"])
    assert text.exit_code == 1 and f"broken at row {seq}" in text.output


def test_an_unmigrated_store_gets_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CETTAR_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        result = runner.invoke(handoffs_app, ["verify-audit"])
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: no store at {tmp_path / 'empty.db'}: run `cettar db upgrade`"
    ]
