"""The in-process transports and the opaque cursor."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI

from sandbox.cursor import CursorError, cursor_pattern, decode_cursor, encode_cursor
from sandbox.registry_data import Position
from sandbox.transport import SyncASGITransport
from tests.sandbox.conftest import REGISTRY_AUTH


def test_sync_transport_uses_one_loop_thread_for_many_requests(
    small: tuple[FastAPI, httpx.Client],
) -> None:
    app, _ = small
    transport = SyncASGITransport(app)
    with httpx.Client(transport=transport, base_url="http://sandbox", headers=REGISTRY_AUTH) as c:
        c.get("/registry/v1/households", params={"limit": 1})
        loop_thread = transport._thread
        threads = threading.active_count()
        for _ in range(150):
            assert c.get("/registry/v1/households", params={"limit": 1}).status_code == 200
        assert threading.active_count() == threads

        def fetch(n: int) -> int:
            return len(c.get("/registry/v1/households", params={"limit": n}).json()["data"])

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(fetch, range(1, 21))) == list(range(1, 21))
    assert loop_thread is not None and not loop_thread.is_alive()


def test_sync_transport_passes_bodies_and_query_strings(
    small: tuple[FastAPI, httpx.Client],
) -> None:
    app, _ = small
    with httpx.Client(transport=SyncASGITransport(app), base_url="http://sandbox") as c:
        admin = {"Authorization": "Bearer sandbox-admin-token"}
        answer = c.put("/_admin/faults", json={"latency_ms": 0, "seed": 9}, headers=admin)
        assert answer.status_code == 200 and answer.json()["seed"] == 9
        kec = c.get(
            "/registry/v1/households",
            params={"kecamatan": "35.07.01", "updated_since": "2020-01-01T00:00:00+07:00"},
            headers=REGISTRY_AUTH,
        )
        assert kec.status_code == 200
        assert all(r["id"].startswith("HH-350701") for r in kec.json()["data"])


def test_cursor_round_trip_and_tampering() -> None:
    pos = Position(3, 123_456, 1)
    token = encode_cursor("recipients", pos)
    assert decode_cursor(token, "recipients") == pos
    assert re.fullmatch(cursor_pattern("recipients"), token)
    assert "=" not in token and "/" not in token and "+" not in token
    with pytest.raises(CursorError):
        decode_cursor(token, "households")
    too_big = f"recipients.{'9' * 19}.0.0"
    for bad in ("", "!!!", token[:-3] + "x", token[::-1], "recipients.1.02.0", too_big):
        assert not re.fullmatch(cursor_pattern("recipients"), bad)
        with pytest.raises(CursorError):
            decode_cursor(bad, "recipients")
