"""Hand-made wire records with known answers, for tests that need no sandbox."""

from __future__ import annotations

from datetime import date
from typing import Any

from models.identity import make_nik, make_no_kk


def member(
    i: int, *, kec: str = "35.78.01", sex: str = "P", born: date = date(1985, 3, 14), **over: Any
) -> dict[str, Any]:
    """A valid member record."""
    rec = {
        "id": f"M-{i}",
        "nik": make_nik(kec, born, sex, i),  # type: ignore[arg-type]
        "name": f"Siti Aminah {i}",
        "sex": sex,
        "birth_date": born.isoformat(),
        "relationship": "kepala",
        "status": "active",
    }
    rec.update(over)
    return rec


def household(
    i: int,
    *,
    updated_at: str = "2026-01-05T08:00:00+07:00",
    desa: str = "35.78.01.1001",
    members: list[dict[str, Any]] | None = None,
    **over: Any,
) -> dict[str, Any]:
    """A valid household record with one member unless members are given."""
    rec = {
        "id": f"HH-{i}",
        "no_kk": make_no_kk(desa[:8], date(2015, 6, 1), i),
        "desa_code": desa,
        "address": f"Jl. Kenanga {i}",
        "desil": 2,
        "updated_at": updated_at,
        "members": members if members is not None else [member(i * 10 + 1)],
    }
    rec.update(over)
    return rec


def recipient(i: int, *, programme: str = "PKH", **over: Any) -> dict[str, Any]:
    """A valid programme enrolment record."""
    rec = {
        "id": f"ENR-{programme}-{i}",
        "programme": programme,
        "household_id": f"HH-{i}",
        "nik_pengurus": make_nik("35.78.01", date(1985, 3, 14), "P", i * 10 + 1),
        "no_kk": make_no_kk("35.78.01", date(2015, 6, 1), i),
        "desa_code": "35.78.01.1001",
        "period": "2026-Q4",
        "status": "active",
        "updated_at": "2026-01-05T08:00:00+07:00",
    }
    rec.update(over)
    return rec
