"""The `intake-folder` flow: spreadsheets desa drop in their own folder, taken into the store.

The watched root (`CETTAR_INTAKE_DIR`, default `<data dir>/intake`) holds one sub-folder per
desa code, which only that desa's operators may write. Each new `.xlsx`/`.csv` file is
matched to its template by its headers, its rows are checked for that desa and written
(`integrations.store.intake`), and the sender finds beside the file:

- `<name>.hasil.txt`: the counts (rows, accepted, unchanged, rejected);
- `<name>.ditolak.xlsx`: the rejected rows with row numbers, masked ids and reasons;
- `<name>.galat.txt` instead, when the file cannot be read as a template.

A file is known by its content hash (kept in `<root>/.cettar/<desa>.json`): a file already
taken, under any name, is skipped; taking it again would change nothing either. The writes
of each source hold the store guard of its agency (`intake_guard`, which the desk's upload
holds too). File names are masked in logs and results (a name may hold an id); tasks pass
file names and counts, never rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.guards import parts_of_sources, store_guard
from integrations.settings import get_settings
from integrations.store.engine import get_engine
from integrations.store.intake import content_hash, ingest_file, source_of
from models.identity import mask_ids_in_text
from models.intake import IntakeFileError, file_desa
from models.scope import WHOLE_PROVINCE, RegionScope

__all__ = ["LEDGER_DIR", "intake_folder_flow", "intake_guard", "intake_root", "pending_files"]

LEDGER_DIR = ".cettar"
_OUTPUTS = (".ditolak.xlsx", ".hasil.txt", ".galat.txt")


def intake_root() -> Path:
    """The watched root: `CETTAR_INTAKE_DIR`, or `<data dir>/intake`."""
    settings = get_settings()
    return settings.intake_dir or settings.data_dir / "intake"


def intake_guard(source: str, *, what: str) -> AbstractContextManager[None]:
    """The store guard a file of `source` is written under (its agency's), wherever it came from."""
    return store_guard(parts_of_sources([source]), what=what)


def _ledger_path(root: Path, desa: str) -> Path:
    return root / LEDGER_DIR / f"{desa}.json"


def _ledger(root: Path, desa: str) -> dict[str, Any]:
    path = _ledger_path(root, desa)
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def _write_atomic(path: Path, data: bytes) -> None:
    # A sender opening the file meanwhile sees the old one or the new one, never half.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _remember(root: Path, desa: str, file_hash: str, entry: dict[str, Any]) -> None:
    ledger = _ledger(root, desa)
    ledger[file_hash] = entry
    path = _ledger_path(root, desa)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(ledger, indent=1, sort_keys=True).encode())


def _is_input(path: Path) -> bool:
    name = path.name
    return (
        path.is_file()
        and path.suffix.lower() in (".xlsx", ".csv")
        and not name.startswith((".", "~$"))  # hidden files, a spreadsheet's lock file
        and not name.lower().endswith(_OUTPUTS)
    )


def _desa_folders(root: Path) -> Iterator[tuple[str, Path]]:
    logger = get_run_logger()
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != LEDGER_DIR):
        try:
            desa = file_desa(folder.name)
        except ValueError:
            logger.warning("%s: not a desa code, folder skipped", mask_ids_in_text(folder.name))
            continue
        yield desa, folder


def pending_files(root: Path, scope: RegionScope = WHOLE_PROVINCE) -> list[dict[str, str]]:
    """New input files of the scope's desa under `root`: desa, path relative to root, hash."""
    out: list[dict[str, str]] = []
    for desa, folder in _desa_folders(root):
        if not scope.covers_kecamatan(desa.rsplit(".", 1)[0]):
            continue
        done = _ledger(root, desa)
        for path in sorted(folder.iterdir()):
            if not _is_input(path):
                continue
            digest = content_hash(path.read_bytes())
            if digest in done:
                continue
            out.append({"desa": desa, "file": str(path.relative_to(root)), "hash": digest})
    return out


@task(name="scan-intake-folder", cache_policy=NO_CACHE)
def scan_task(root: str, scope: RegionScope = WHOLE_PROVINCE) -> list[dict[str, str]]:
    """New spreadsheets of the scope's desa under the root, each with its hash and source."""
    base = Path(root)
    if not base.is_dir():
        get_run_logger().info("%s: no intake folder, nothing to take", root)
        return []
    jobs = pending_files(base, scope)
    for job in jobs:
        path = base / job["file"]
        try:
            job["source"] = source_of(path.name, path.read_bytes())
        except IntakeFileError:
            job["source"] = ""  # told to the sender by the ingest task
    get_run_logger().info("%s new files", len(jobs))
    return jobs


def _counts_text(counts: dict[str, Any]) -> str:
    lines = [
        f"Baris data: {counts['rows']}",
        f"Diterima (baru atau diperbarui): {counts['written']}",
        f"Tidak berubah: {counts['unchanged']}",
        f"Ditolak: {counts['rejected']}",
    ]
    if counts["rejected"]:
        lines.append("Baris yang ditolak dan alasannya ada di berkas .ditolak.xlsx.")
    return "\n".join(lines) + "\n"


@task(name="ingest-intake-file", cache_policy=NO_CACHE)
def ingest_task(root: str, desa: str, file: str, source: str) -> dict[str, Any]:
    """Take one desa file into the store and write its results beside it; counts only."""
    logger = get_run_logger()
    base = Path(root)
    path = base / file
    shown = mask_ids_in_text(file)
    content = path.read_bytes()
    digest = content_hash(content)
    stem = path.with_suffix("")
    summary: dict[str, Any] = {"file": shown, "desa_code": desa, "source": source}
    if digest in _ledger(base, desa):
        # Taken by another run since the scan (runs wait for each other on the guard).
        logger.info("%s: already taken", shown)
        return {**summary, "status": "skipped"}
    settings = get_settings()
    try:
        if not source:
            source = source_of(path.name, content)
        result = ingest_file(
            get_engine(),
            source,
            desa,
            path.name,
            content,
            key=settings.pii_key.get_secret_value().encode(),
            now=datetime.now(UTC),
        )
    except IntakeFileError as exc:
        _write_atomic(Path(f"{stem}.galat.txt"), f"Berkas tidak dapat dibaca: {exc}\n".encode())
        _remember(base, desa, digest, {"file": shown, "error": mask_ids_in_text(str(exc))})
        logger.warning("%s: not read: %s", shown, mask_ids_in_text(str(exc)))
        return {**summary, "status": "unreadable"}
    counts = result.counts.as_dict()
    rejected_path = Path(f"{stem}.ditolak.xlsx")
    if result.rejected_xlsx is not None:
        _write_atomic(rejected_path, result.rejected_xlsx)
    else:
        rejected_path.unlink(missing_ok=True)  # a stale list from an earlier version
    _write_atomic(Path(f"{stem}.hasil.txt"), _counts_text(counts).encode())
    _remember(
        base,
        desa,
        digest,
        {"file": shown, "source": source, "at": datetime.now(UTC).isoformat(timespec="seconds")},
    )
    logger.info(
        "%s (%s): %s rows, %s written, %s unchanged, %s rejected",
        shown,
        source,
        counts["rows"],
        counts["written"],
        counts["unchanged"],
        counts["rejected"],
    )
    return {
        **summary,
        "source": source,
        "status": "taken",
        **{k: counts[k] for k in ("rows", "written", "unchanged", "rejected", "reasons")},
    }


@flow(name="intake-folder", log_prints=False)
def intake_folder_flow(
    root: str | None = None, scope: RegionScope = WHOLE_PROVINCE
) -> dict[str, Any]:
    """Take the new spreadsheets of the scope's desa folders into the store; counts per file."""
    base = str(root or intake_root())
    jobs = scan_task(base, scope)
    results: list[dict[str, Any]] = []
    what = flow_run.get_name() or "intake-folder"
    # An unreadable file has no source and writes nothing but its note: no guard needed.
    for job in (j for j in jobs if not j["source"]):
        results.append(ingest_task(base, job["desa"], job["file"], ""))
    for source in sorted({j["source"] for j in jobs if j["source"]}):
        with intake_guard(source, what=what):
            for job in (j for j in jobs if j["source"] == source):
                results.append(ingest_task(base, job["desa"], job["file"], source))
    taken = [r for r in results if r["status"] == "taken"]
    return {
        "root": base,
        "files": len(results),
        "taken": len(taken),
        "unreadable": sum(r["status"] == "unreadable" for r in results),
        "skipped": sum(r["status"] == "skipped" for r in results),
        "rows": sum(r["rows"] for r in taken),
        "written": sum(r["written"] for r in taken),
        "rejected": sum(r["rejected"] for r in taken),
        "by_file": results,
    }
