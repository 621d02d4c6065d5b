"""The demo's office desk: some offices answer on the desk, through its forms, as a browser.

Kabupaten Malang's offices work on the desk alone and Kota Surabaya's on the inbox and the
desk. After the first day's dispatch, a few of their kecamatan officers sign in to the desk
served on a local port (changing the temporary password first, as every new account must),
open their list and answer two thirds of it: each form posted with the CSRF token the page
gave. The decisions go through the same rule and audit chain as the inbox's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from integrations.store.desk_accounts import add_account
from integrations.store.engine import write_lock
from integrations.store.tables import DELIVERY, HANDOFF
from models.desk import DESK_RECEIPT_PREFIX

__all__ = [
    "DEMO_DESK_OFFICES",
    "DEMO_PASSWORD",
    "answer_on_the_desk",
    "desk_deliveries",
    "serve_desk",
]

DEMO_DESK_OFFICES = {"35.07": "desk", "35.78": "both"}
"""`CETTAR_DESK_OFFICES` of the demo: Kabupaten Malang on the desk, Kota Surabaya on both."""
DEMO_PASSWORD = "demo-meja-kantor-2026"  # noqa: S105 - the demo's public sample account
"""The password the demo's officers choose at their first sign-in (a public demo value)."""
# Kecamatan per channel that answer on the desk; each leaves every third handoff of its
# list unanswered, so the second day still has desk handoffs to escalate.
_OFFICERS_PER_CHANNEL = 4
_LEAVE_EVERY = 3

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_HANDOFF_LINK = re.compile(r'href="/handoffs/([0-9a-f]{8,32})"')


@contextmanager
def serve_desk(engine: Engine, clock: Callable[[], datetime]) -> Iterator[str]:
    """The desk on a free local port in a thread, its clock the demo's; yields its URL."""
    from desk.app import create_app
    from desk.config import DeskConfig
    from integrations.settings import get_settings
    from sandbox.server import serve_app_in_thread

    app = create_app(engine, DeskConfig.from_settings(get_settings()), clock=clock)
    with serve_app_in_thread(app, name="desk") as url:
        yield url


def desk_deliveries(engine: Engine) -> int:
    """Deliveries recorded on the desk (not posted to the inbox)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    DELIVERY.c.status == "sent",
                    DELIVERY.c.receipt_id.startswith(DESK_RECEIPT_PREFIX),
                )
            ).scalar_one()
        )


def _busiest_kecamatan(engine: Engine, area: str) -> list[str]:
    """The kecamatan offices of `area` holding the most delivered handoffs, busiest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(HANDOFF.c.office, func.count().label("n"))
            .where(
                HANDOFF.c.office.startswith(f"kecamatan:{area}.", autoescape=True),
                HANDOFF.c.state == "delivered",
            )
            .group_by(HANDOFF.c.office)
            .order_by(func.count().desc(), HANDOFF.c.office)
            .limit(_OFFICERS_PER_CHANNEL)
        ).all()
    return [r.office for r in rows]


def _csrf(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    if found is None:
        raise RuntimeError(f"no form on {page.url.path} ({page.status_code})")
    return found.group(1)


def _officer(client: httpx.Client, email: str, temporary: str) -> None:
    """Sign in with the temporary password and choose the demo's, as a new officer does."""
    page = client.get("/login")
    signed = client.post(
        "/login", data={"email": email, "password": temporary, "csrf_token": _csrf(page)}
    )
    if signed.status_code != 303 or signed.headers.get("location") != "/password":
        raise RuntimeError(f"sign-in of {email} answered {signed.status_code}")
    form = client.get("/password")
    changed = client.post(
        "/password",
        data={
            "current": temporary,
            "new": DEMO_PASSWORD,
            "confirm": DEMO_PASSWORD,
            "csrf_token": _csrf(form),
        },
    )
    if changed.status_code != 303:
        raise RuntimeError(f"password change of {email} answered {changed.status_code}")


def _answer_list(client: httpx.Client) -> Counter[str]:
    """Answer two of every three handoffs of the officer's open list (resolve or reject)."""
    outcomes: Counter[str] = Counter()
    listing = client.get("/handoffs", params={"status": "open"})
    ids = list(dict.fromkeys(_HANDOFF_LINK.findall(listing.text)))
    answered = [h for i, h in enumerate(ids) if i % _LEAVE_EVERY != _LEAVE_EVERY - 1]
    for n, handoff_id in enumerate(answered):
        detail = client.get(f"/handoffs/{handoff_id}")
        if 'name="action"' not in detail.text:
            continue  # settled meanwhile, or not delivered yet: nothing to answer
        action, reason = (
            ("resolve", "Sudah dicek di lapangan") if n % 3 else ("reject", "Data tidak sesuai")
        )
        done = client.post(
            f"/handoffs/{handoff_id}/decision",
            data={"action": action, "reason": reason, "csrf_token": _csrf(detail)},
        )
        location = done.headers.get("location", "")
        outcomes[location.rpartition("done=")[2] or f"http {done.status_code}"] += 1
    return outcomes


def answer_on_the_desk(engine: Engine, desk_url: str, now: datetime) -> dict[str, Any]:
    """Accounts for the busiest desk kecamatan, each answering a share of its list; counts."""
    offices = [o for area in DEMO_DESK_OFFICES for o in _busiest_kecamatan(engine, area)]
    accounts: dict[str, str] = {}
    with write_lock(engine), engine.begin() as conn:
        for office in offices:
            email = f"camat.{office.split(':')[1].replace('.', '')}@demo.cettar.local"
            accounts[email] = add_account(conn, email, office, "officer", now, actor="demo")
    outcomes: Counter[str] = Counter()
    for email, temporary in accounts.items():
        with httpx.Client(base_url=desk_url, follow_redirects=False, timeout=30) as client:
            _officer(client, email, temporary)
            outcomes.update(_answer_list(client))
    return {
        "url": desk_url,
        "offices": offices,
        "accounts": sorted(accounts),
        "account": next(iter(accounts), ""),
        "password": DEMO_PASSWORD if accounts else "",
        "answered": sum(outcomes.values()),
        "outcomes": dict(sorted(outcomes.items())),
    }
