"""Kill a sync process with SIGKILL mid-run, rerun it: the store equals an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sandbox.config import FaultConfig, RegistryDataConfig, SandboxConfig
from sandbox.registry_data import RegistryData
from sandbox.server import serve_in_thread

DATA = RegistryDataConfig(seed=11, households=3000)
KABUPATEN = "35.78"

SNAPSHOT = {
    "household": "id, no_kk, kk_token, desa_code, address, desil, member_count, updated_at",
    "member": "id, household_id, nik, nik_token, name, sex, birth_date, relationship, status,"
    " updated_at",
    "enrolment": "id, programme, household_id, nik_token, kk_token, period, status, updated_at",
    "quarantine": "source, partition, record_id, payload_hash, reason_codes, payload, seen_count",
    # Where each partition stands; its page counters also count the resumed run's re-reads.
    "sync_cursor": "source, partition, watermark, cursor",
}


def _sync(db: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    store_env = {**env, "CETTAR_DATABASE_URL": f"sqlite:///{db}"}
    # An operator creates the store once; `sync` refuses to create one from a mistyped path.
    subprocess.run(
        [sys.executable, "-m", "deployments.cli", "db", "upgrade"],
        env=store_env,
        check=True,
        capture_output=True,
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deployments.cli",
            "sync",
            "registry",
            "--kabupaten",
            KABUPATEN,
            "--page-limit",
            "4",
            "--json",
        ],
        env=store_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _committed_pages(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(
                conn.execute("select coalesce(sum(pages), 0) from sync_cursor").fetchone()[0]
            )
    except sqlite3.Error:
        return 0


def _snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(f"select {cols} from {table} order by {cols}").fetchall()
            for table, cols in SNAPSHOT.items()
        }


@pytest.mark.slow
@pytest.mark.parametrize("commit_records", [1, 10])  # a transaction per page; groups of pages
def test_sigkill_mid_sync_then_resume_loses_and_duplicates_nothing(
    tmp_path: Path, prefect_api: str, commit_records: int
) -> None:
    config = SandboxConfig(registry=DATA, faults=FaultConfig(latency_ms=15))
    with serve_in_thread(config) as url:
        env = {
            **os.environ,
            "CETTAR_REGISTRY_URL": f"{url}/registry",
            "CETTAR_DATA_DIR": str(tmp_path),
            "PREFECT_API_URL": prefect_api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "CETTAR_COMMIT_RECORDS": str(commit_records),
        }
        reference, crashed = tmp_path / "reference.db", tmp_path / "crashed.db"
        ref = _sync(reference, env)
        _, err = ref.communicate(timeout=300)
        assert ref.returncode == 0, err.decode()[-2000:]
        total_pages = _committed_pages(reference)

        victim = _sync(crashed, env)
        deadline = time.monotonic() + 120
        while _committed_pages(crashed) < total_pages // 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        at_kill = _committed_pages(crashed)
        assert victim.returncode == -signal.SIGKILL
        assert 0 < at_kill < total_pages, (at_kill, total_pages)

        resumed = _sync(crashed, env)
        _, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err.decode()[-2000:]

    want, got = _snapshot(reference), _snapshot(crashed)
    for table in SNAPSHOT:
        lost = set(want[table]) - set(got[table])
        extra = set(got[table]) - set(want[table])
        assert not lost and not extra, f"{table}: {len(lost)} lost, {len(extra)} extra"
        assert len(got[table]) == len(want[table])
    # And the reference itself holds exactly what the sandbox serves for the kabupaten.
    data = RegistryData(DATA)
    kecs = {
        data.kecamatan_of(i) for i in data.indices() if data.kecamatan_of(i).startswith(KABUPATEN)
    }
    valid = sum(data.truth(k)["valid_households"] for k in kecs)
    assert len(got["household"]) == valid
    print(
        f"crash-resume (commit_records={commit_records}): killed after {at_kill}/{total_pages} "
        "pages; "
        f"{len(got['household'])} households, {len(got['member'])} members, "
        f"{len(got['enrolment'])} enrolments, {len(got['quarantine'])} quarantined: "
        "0 lost, 0 duplicated"
    )
