"""Quarantine retention: payloads (clear ids inside) are purged after their last sighting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from integrations.store.audit import AUDIT, verify_audit
from integrations.store.quarantine import PURGE_SUBJECT, purge_quarantine, quarantine
from integrations.store.tables import QUARANTINE
from models.handoffs import has_clear_id
from models.validation import Reason, Rejection
from tests.models.test_sources import NIK, blt, farmer

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
WHY = (Reason("nik", "nik_invalid", "NIK is invalid"),)


def _held(store: Engine, source: str, record: dict[str, Any], days_ago: int) -> None:
    """A quarantined record whose last sighting was `days_ago` days before NOW."""
    with store.begin() as conn:
        quarantine(
            conn,
            source,
            "35.07.01",
            [Rejection(record["id"], WHY, record)],
            now=NOW - timedelta(days=days_ago),
        )


def _ids(store: Engine) -> set[str]:
    with store.connect() as conn:
        return set(conn.execute(select(QUARANTINE.c.record_id)).scalars())


def _audit(store: Engine) -> list[dict[str, Any]]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(select(AUDIT).order_by(AUDIT.c.seq)).mappings()]


def _seed(store: Engine) -> None:
    _held(store, "desa.blt-recipients", blt(id="BLT-OLD", nik=NIK), 91)
    _held(store, "pertanian.farmer-needs", farmer(id="RDKK-OLD"), 120)
    _held(store, "desa.blt-recipients", blt(id="BLT-RECENT"), 89)
    # Replayed rows keep their payload too: they are purged by the same rule.
    _held(store, "desa.blt-recipients", blt(id="BLT-REPLAYED"), 100)
    with store.begin() as conn:
        conn.execute(
            update(QUARANTINE)
            .where(QUARANTINE.c.record_id == "BLT-REPLAYED")
            .values(status="replayed")
        )


def test_rows_past_retention_are_purged_with_an_audit_row(store: Engine) -> None:
    _seed(store)
    counts = purge_quarantine(store, now=NOW, retention_days=90)

    assert _ids(store) == {"BLT-RECENT"}
    assert counts.purged == 3
    assert counts.by_source == {"desa.blt-recipients": 2, "pertanian.farmer-needs": 1}
    assert counts.by_status == {"open": 2, "replayed": 1}
    assert counts.cutoff == NOW - timedelta(days=90)
    (row,) = _audit(store)
    assert (row["handoff_id"], row["to_state"], row["seq"]) == (PURGE_SUBJECT, "purged", 1)
    assert counts.audit_seq == 1
    assert "purged 3 quarantined records" in row["reason"]
    assert "desa.blt-recipients 2" in row["reason"] and "replayed 1" in row["reason"]
    assert not has_clear_id(row["reason"]) and NIK not in row["reason"]
    with store.connect() as conn:
        report = verify_audit(conn)
    assert report.ok and report.checked == 1, report.problem


def test_a_second_purge_removes_nothing_and_writes_no_audit_row(store: Engine) -> None:
    _seed(store)
    purge_quarantine(store, now=NOW, retention_days=90)
    again = purge_quarantine(store, now=NOW, retention_days=90)
    assert (again.purged, again.audit_seq) == (0, None)
    assert _ids(store) == {"BLT-RECENT"}
    assert len(_audit(store)) == 1


def test_a_new_sighting_restarts_the_retention(store: Engine) -> None:
    _seed(store)
    # The agency sends the same bad record again today: it is kept 90 days from now.
    _held(store, "desa.blt-recipients", blt(id="BLT-OLD", nik=NIK), 0)
    purge_quarantine(store, now=NOW, retention_days=90)
    assert _ids(store) == {"BLT-RECENT", "BLT-OLD"}


def test_dry_run_counts_only(store: Engine) -> None:
    _seed(store)
    counts = purge_quarantine(store, now=NOW, retention_days=90, dry_run=True)
    assert (counts.purged, counts.dry_run, counts.audit_seq) == (3, True, None)
    assert len(_ids(store)) == 4
    assert _audit(store) == []


def test_the_verifier_detects_an_edited_purge_row(store: Engine) -> None:
    _seed(store)
    purge_quarantine(store, now=NOW, retention_days=90)
    with store.begin() as conn:
        conn.execute(update(AUDIT).values(reason="purged 0 quarantined records"))
    with store.connect() as conn:
        report = verify_audit(conn)
    assert not report.ok and report.first_bad_seq == 1


def test_purge_rows_interleave_with_handoff_transitions_in_one_chain(store: Engine) -> None:
    from integrations.store.handoffs import create_handoffs, transition
    from models.checks import Finding
    from models.handoffs import HandoffKind, Office
    from models.identity import id_token
    from models.workdays import WorkCalendar

    finding = Finding(
        kind=HandoffKind.BLT_PKH_OVERLAP,
        subject_token=id_token(NIK, b"test-key"),
        period="2026-Q4",
        receivers=(Office.parse("kecamatan:35.07.01"),),
        evidence={"programmes": "PKH"},
    )
    with store.begin() as conn:
        create_handoffs(conn, [finding], sender="checks", now=NOW, calendar=WorkCalendar())
    _seed(store)
    purge_quarantine(store, now=NOW, retention_days=90)
    (hid,) = finding.keys
    with store.begin() as conn:
        assert transition(conn, hid, "delivered", actor="op", reason="sent", at=NOW)
    assert [r["handoff_id"] for r in _audit(store)] == [hid, PURGE_SUBJECT, hid]
    with store.connect() as conn:
        report = verify_audit(conn)
    assert report.ok and report.checked == 3, report.problem


def test_the_cli_command_dry_runs_then_purges(
    store: Engine, store_url: str, prefect_api: str, monkeypatch: Any
) -> None:
    # The purge holds every agency's store guard (a Prefect API); the dry run none.
    import json

    from typer.testing import CliRunner

    from deployments.cli import app
    from integrations.settings import get_settings
    from integrations.store.engine import get_engine

    # Seen 91 and 89 days before the real clock: the CLI purges as of now.
    now = datetime.now(UTC)
    for record_id, days in (("BLT-OLD", 91), ("BLT-RECENT", 89)):
        with store.begin() as conn:
            quarantine(
                conn,
                "desa.blt-recipients",
                "35.07.01",
                [Rejection(record_id, WHY, blt(id=record_id))],
                now=now - timedelta(days=days),
            )
    monkeypatch.setenv("CETTAR_DATABASE_URL", store_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        runner = CliRunner()
        dry = runner.invoke(app, ["quarantine", "purge", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "would purge 1 quarantined records" in dry.stdout
        assert _ids(store) == {"BLT-OLD", "BLT-RECENT"}
        done = runner.invoke(app, ["quarantine", "purge", "--json"])
        assert done.exit_code == 0, done.output
        assert json.loads(done.stdout)["purged"] == 1
        assert _ids(store) == {"BLT-RECENT"}
    finally:
        get_engine().dispose()
        get_settings.cache_clear()
        get_engine.cache_clear()
