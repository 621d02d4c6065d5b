"""The shipped Kemendagri region registry, loaded into the store."""

from __future__ import annotations

from sqlalchemy import Engine

from integrations.store.bulk import upsert_all
from integrations.store.common import chunks
from integrations.store.tables import REGION
from models.wilayah import get_region_registry


def load_regions(engine: Engine) -> int:
    """Load the shipped region registry into the store (idempotent)."""
    rows = [
        {"code": r.code, "name": r.name, "kind": str(r.kind), "parent_code": r.parent_code}
        for r in get_region_registry()
    ]
    with engine.begin() as conn:
        for part in chunks(rows, 2000):
            upsert_all(conn, REGION, part, key=("code",))
    return len(rows)
