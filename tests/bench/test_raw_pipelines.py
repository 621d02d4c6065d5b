"""The bench's raw baselines store exactly what the hub's sync engine stores from the same pages."""

from __future__ import annotations

from pathlib import Path

from bench.raw_pipelines import TABLES, run, table_checksums
from integrations.agencies.client import AgencyClient
from integrations.store.engine import make_engine, upgrade
from integrations.sync.engine import sync_source
from models.scope import WHOLE_PROVINCE
from sandbox.config import DEFAULT_REGISTRY_TOKEN, RegistryDataConfig, SandboxConfig
from sandbox.server import serve_in_thread

KEY = b"bench-test-key"
COLLECTIONS = ["households", "recipients"]
LIMIT = 200


def test_raw_pipelines_store_the_rows_the_hub_stores(tmp_path: Path) -> None:
    # Many broken records, so that every kind of reject goes through both sides' checks.
    config = SandboxConfig(
        registry=RegistryDataConfig(seed=11, households=1500, bad_rate=0.08),
        page_cache_dir=tmp_path / "pages",
    )
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in ("hub", "raw", "fast")}
    engine = make_engine(urls["hub"])
    upgrade(engine)
    with serve_in_thread(config) as root:
        registry = f"{root}/registry"
        with AgencyClient("registry", registry, DEFAULT_REGISTRY_TOKEN) as client:
            for kecamatan in WHOLE_PROVINCE.partitions().values():
                for collection in COLLECTIONS:
                    sync_source(
                        engine, client, f"registry.{collection}", kecamatan, limit=LIMIT, key=KEY
                    )
        figures = {
            mode: run(mode, registry, DEFAULT_REGISTRY_TOKEN, urls[mode], LIMIT, COLLECTIONS, KEY)
            for mode in ("raw", "fast")
        }
    engine.dispose()
    hub, raw, fast = (table_checksums(urls[name]) for name in ("hub", "raw", "fast"))
    assert hub["household"][0] > 1000
    assert hub["quarantine"][0] > 100
    # Same validation: the same rows and the same quarantine, reasons included.
    assert raw == hub
    # Fast checks: the same rows; its quarantine keeps its own reason codes.
    assert {t: fast[t] for t in TABLES} == {t: hub[t] for t in TABLES}
    assert fast["quarantine"][0] == hub["quarantine"][0]
    assert figures["raw"]["records"] == figures["fast"]["records"]
    assert figures["fast"]["quarantined"] == hub["quarantine"][0]
