"""Pre-rendered agency pages: each page is rendered once, kept on disk and served as bytes.

A benchmark must time the hub, not the simulator: generating a page of 1,000 households
costs the sandbox about as much CPU as the hub spends validating it. With a page cache the
sandbox renders each (collection, epoch, query) page once, with the live code path, writes
the exact response body to a file and afterwards only reads it back. The bytes are those of
the live page (bad and hostile records included), so a client cannot tell the two apart.
Besides the registry, the read-only collections of the coordination agencies and the
puskesmas are cached too: their pages depend only on the configuration, the epoch and the
query, never on the clock or on what a client wrote (the inbox's decisions do, and are not).

Files live under `<root>/<fingerprint>/epoch-<e>/<collection>/` (`<agency>.<collection>` for
the agencies other than the registry). The fingerprint names the seed and size and hashes
everything else the pages depend on: the registry's data config, the coordination data's
config (planted duplicates, rates, health figures), the region layout and the generators'
own source code, so a cache written by another configuration or another version of the
generator is never served.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path

from models.contracts.puskesmas import SURVEILLANCE
from models.contracts.registry import HOUSEHOLDS, RECIPIENTS
from sandbox.config import CoordinationConfig, SandboxConfig
from sandbox.coordination_data import SOURCES, served_registry
from sandbox.cursor import decode_cursor, encode_cursor
from sandbox.registry_data import Position, RegistryData

__all__ = [
    "CACHED",
    "CACHED_COLLECTIONS",
    "REGISTRY_AGENCY",
    "PageCache",
    "page_body",
    "prerender",
    "prerender_config",
]

CACHED_COLLECTIONS: tuple[str, ...] = (HOUSEHOLDS, RECIPIENTS)
"""Registry collections whose pages depend only on the data config and the epoch."""

REGISTRY_AGENCY = "registry"
"""The agency whose collections are pre-rendered."""

CACHED: frozenset[tuple[str, str]] = frozenset(
    {*((REGISTRY_AGENCY, c) for c in CACHED_COLLECTIONS), *SOURCES, ("puskesmas", SURVEILLANCE)}
)
"""(agency, collection) of every collection whose pages the cache serves."""
_HERE = Path(__file__).resolve().parent


def page_body(records: list[dict[str, object]], next_cursor: str | None) -> bytes:
    """The response body of one page, exactly as the live route serialises it."""
    return json.dumps(
        {"data": records, "next_cursor": next_cursor}, ensure_ascii=False, separators=(",", ":")
    ).encode()


@functools.cache
def _code_digest() -> str:
    # Every module of the sandbox and the models it draws ids and regions from: a change to
    # any of them may change the pages, so it starts a new cache.
    h = hashlib.sha256()
    models = _HERE.parent / "models"
    files = [*sorted(_HERE.glob("*.py")), models / "identity.py", models / "wilayah.py"]
    files += sorted((models / "data" / "wilayah").glob("*"))
    for path in files:
        if path.is_file():
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def fingerprint(registry: RegistryData, coordination: CoordinationConfig | None = None) -> str:
    """The cache directory name of the generators: seed, size and a content hash."""
    cfg = registry.config
    h = hashlib.sha256()
    h.update(cfg.model_dump_json(exclude={"epoch"}).encode())
    if coordination is not None:
        h.update(coordination.model_dump_json().encode())
    h.update(f"{registry.duplicate_nik_rate!r}:{registry.duplicate_deceased_rate!r}".encode())
    h.update("|".join(k.code for k in registry.layout.kecamatan).encode())
    h.update("|".join(v.code for v in registry.layout.villages).encode())
    h.update(_code_digest().encode())
    return f"seed{cfg.seed}-households{cfg.households}-{h.hexdigest()[:16]}"


class PageCache:
    """Rendered pages of one sandbox's generators, one file per (collection, epoch, query)."""

    def __init__(
        self, root: Path, registry: RegistryData, coordination: CoordinationConfig | None = None
    ) -> None:
        self.root = Path(root)
        self.registry = registry
        # Without the coordination config only the registry's pages can be told apart.
        self.agencies = {REGISTRY_AGENCY} if coordination is None else {a for a, _ in CACHED}
        # Hashed once: the data config and code cannot change under a running sandbox.
        self.directory = self.root / fingerprint(registry, coordination)

    def serves(self, agency: str, collection: str) -> bool:
        """Whether pages of this collection come from the cache."""
        return agency in self.agencies and (agency, collection) in CACHED

    def path(
        self,
        collection: str,
        epoch: int,
        *,
        since: datetime | None,
        after: Position | None,
        kecamatan: str | None,
        limit: int,
        agency: str = REGISTRY_AGENCY,
    ) -> Path:
        """The file of one page. Two queries that name the same page share it."""
        # A registry page depends on the instant of `since` (the registry's records have
        # whole milliseconds) and on the cursor's position only; the other agencies' pages
        # are keyed by the exact `since`.
        if since is None:
            since_key = "-"
        elif agency == REGISTRY_AGENCY:
            since_key = str(self.registry.timeline.to_ms(since))
        else:
            since_key = since.isoformat()
        pos = "-" if after is None else f"{after.segment}.{after.index}.{after.slot}"
        kec = kecamatan or "all"
        digest = hashlib.sha256(f"{since_key}|{pos}".encode()).hexdigest()[:24]
        folder = collection if agency == REGISTRY_AGENCY else f"{agency}.{collection}"
        return self.directory / f"epoch-{epoch}" / folder / kec / f"{limit}-{digest}.json"

    def read(self, path: Path) -> bytes | None:
        """The stored body, or None if this page was never rendered."""
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def write(self, path: Path, body: bytes) -> None:
        """Store a body atomically: a reader sees the whole file or none."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".page-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def body(
        self,
        collection: str,
        render: Callable[[], bytes],
        *,
        since: datetime | None,
        after: Position | None,
        kecamatan: str | None,
        limit: int,
        agency: str = REGISTRY_AGENCY,
    ) -> bytes:
        """The page's body from disk; rendered live and stored the first time it is asked."""
        path = self.path(
            collection,
            self.registry.epoch,
            since=since,
            after=after,
            kecamatan=kecamatan,
            limit=limit,
            agency=agency,
        )
        stored = self.read(path)
        if stored is not None:
            return stored
        body = render()
        self.write(path, body)
        return body


def prerender(
    cache: PageCache,
    limit: int,
    *,
    collections: Sequence[str] = CACHED_COLLECTIONS,
    kecamatan: Iterable[str | None] | None = None,
) -> int:
    """Render every page a fresh sync reads (per kecamatan, no `updated_since`); pages written.

    Pages already on disk are kept, so a second call on the same cache writes nothing.
    """
    registry = cache.registry
    areas = (
        list(kecamatan) if kecamatan is not None else [k.code for k in registry.layout.kecamatan]
    )
    written = 0
    for collection in collections:
        pages = registry.pages(collection)
        for kec in areas:
            after: Position | None = None
            while True:
                path = cache.path(
                    collection, registry.epoch, since=None, after=after, kecamatan=kec, limit=limit
                )
                stored = cache.read(path)
                if stored is None:
                    records, nxt = pages(since=None, after=after, kecamatan=kec, limit=limit)
                    next_cursor = None if nxt is None else encode_cursor(collection, nxt)
                    cache.write(path, page_body(records, next_cursor))
                    written += 1
                else:
                    # A page rendered before: its own next_cursor says where the next starts.
                    next_cursor = json.loads(stored)["next_cursor"]
                    nxt = None if next_cursor is None else decode_cursor(next_cursor, collection)
                if nxt is None:
                    break
                after = nxt
    return written


def prerender_config(config: SandboxConfig, limit: int) -> int:
    """Pre-render the pages a sandbox built from `config` serves into its page cache."""
    if config.page_cache_dir is None:
        raise ValueError("the config names no page_cache_dir")
    cache = PageCache(config.page_cache_dir, served_registry(config), config.coordination)
    return prerender(cache, limit)
