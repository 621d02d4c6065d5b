"""The desk's web application: sign-in, the office's handoff list, one handoff, its answers.

Every page is rendered on the server (Jinja2, autoescaped) and works without JavaScript;
every form carries the session's CSRF token; a handoff outside the account's area is a 404
whatever its id. Clear NIK/No. KK appear only in the response to an officer's reveal, which
is audited and never cached. A desa's officers upload its spreadsheets ("Unggah berkas"):
taken into the store as the `intake-folder` flow takes a dropped file, audited, the
rejected rows offered back as XLSX to that office only.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message

from desk.config import DeskConfig
from desk.labels import (
    EVIDENCE_LABELS,
    KIND_LABELS,
    LEVEL_LABELS,
    ROLE_LABELS,
    STATE_LABELS,
    STATUS_LABELS,
    action_label,
)
from desk.ratelimit import LoginLimiter
from desk.sessions import COOKIE, Session, SessionCodec
from desk.store import (
    REASON_MAX,
    STATUSES,
    HandoffNotVisible,
    ListFilter,
    NotAllowed,
    Person,
    access_of,
    decide_on_desk,
    desk_audit_rows,
    evidence_of,
    list_handoffs,
    people_for,
    province_scorecard,
    reveal_person,
    summary,
    visible_handoff,
)
from desk.xlsx import list_workbook
from integrations.settings import get_settings
from integrations.store.desk_accounts import (
    account_of,
    add_account,
    change_password,
    disable_account,
    get_account,
    list_accounts,
    record_sign_in,
    reset_password,
    verify_password,
)
from integrations.store.engine import write_lock
from integrations.store.intake import (
    IntakeResult,
    content_hash,
    ingest_file,
    record_refused_file,
    source_of,
)
from models.desk import (
    Account,
    DeskAction,
    OfficeLevel,
    Role,
    actions_for,
    can_manage_accounts,
    can_reveal,
)
from models.handoffs import FINAL_STATES, HandoffKind, safe_text
from models.intake import TEMPLATES as INTAKE_TEMPLATES
from models.intake import IntakeFileError, template_workbook
from models.wilayah import get_region_registry
from models.workdays import JAKARTA, WorkCalendar, default_calendar, local_date

__all__ = ["create_app"]

TEMPLATES = Path(__file__).with_name("templates")

# Pages hold personal data: no framing, no outside resources, no caching, no referrer.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_OUTCOME_MESSAGES = {
    "applied": "Keputusan dicatat.",
    "repeat": "Keputusan yang sama sudah tercatat sebelumnya; tidak ada perubahan.",
    "superseded": "Serah terima ini sudah diselesaikan sebelumnya; keputusan dicatat tanpa "
    "mengubah status.",
    "illegal": "Keputusan ini tidak berlaku untuk status serah terima saat ini.",
    "deferred": "Serah terima belum tercatat terkirim; keputusan akan diterapkan nanti.",
}


_SCORECARD_KECAMATAN = 50
"""Kecamatan lines on the scorecard page, worst first."""


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


class _Page(Exception):
    """Stop a request with a message page (403, 404, 429, ...)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        self.status, self.title, self.message = status, title, message


def office_label(key: str) -> str:
    """ "Kecamatan Karang Pilang (35.78.01)" for a desk office key."""
    level, _, code = key.partition(":")
    if level in ("programme", "agency"):
        return f"Program {code.upper()}"
    if level == OfficeLevel.PROVINCE:
        return "Provinsi Jawa Timur"
    region = get_region_registry().get(code)
    name = region.name if region else code
    if level == "kabupaten":
        return f"{name} ({code})"
    return f"{LEVEL_LABELS.get(level, level)} {name} ({code})"


def _wib(moment: datetime | None) -> str:
    """A stored UTC time as office staff read it: local time in Jawa Timur (WIB)."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(JAKARTA)).strftime("%Y-%m-%d %H:%M")


# --- spreadsheet upload ----------------------------------------------------------------------

_LOG = logging.getLogger("cettar.desk")
_FORM_OVERHEAD = 64 * 1024
"""Bytes a multipart form adds to its file (boundaries, headers, the CSRF field), at most."""
_REJECTED_KEEP = timedelta(hours=24)
_REJECTED_MOST = 200
"""Rejected-rows workbooks the desk keeps for download: for a day, the latest 200 uploads."""
_ROWS_SHOWN = 50
"""Rejected rows listed on the result page; the workbook has them all."""
_ID_CELL_CODES = frozenset({"numeric_cell", "scientific_notation"})


def can_upload(account: Account) -> bool:
    """Whether an account may upload its desa's spreadsheets: an active desa officer or admin."""
    return (
        account.active
        and account.office.level is OfficeLevel.DESA
        and account.role in (Role.OFFICER, Role.ADMIN)
    )


def _size_text(size: int) -> str:
    """ "10 MB" or "512 KB" for a limit in bytes."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    return f"{size // 1024} KB"


class _BodyTooLarge(Exception):
    """A request body went past its cap while it was read."""


def _capped(
    receive: Callable[[], Awaitable[Message]], cap: int
) -> Callable[[], Awaitable[Message]]:
    """`receive` that stops a body longer than `cap` bytes (also one sent without a length)."""
    seen = 0

    async def capped() -> Message:
        """The next message; _BodyTooLarge once the body passes the cap."""
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise _BodyTooLarge
        return message

    return capped


@dataclass(frozen=True, slots=True)
class _Rejected:
    """One upload's rejected rows: whose, of which source, when, the workbook."""

    office: str
    source: str
    at: datetime
    xlsx: bytes


class _RejectedFiles:
    """Recent uploads' rejected-rows workbooks (masked), by an unguessable id, per office."""

    def __init__(self, keep: timedelta, most: int) -> None:
        self.keep, self.most = keep, most
        self._files: OrderedDict[str, _Rejected] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, office: str, source: str, xlsx: bytes, now: datetime) -> str:
        """Keep a workbook for `office`; its download id."""
        file_id = secrets.token_urlsafe(18)
        with self._lock:
            self._files[file_id] = _Rejected(office, source, now, xlsx)
            while len(self._files) > self.most:
                self._files.popitem(last=False)
        return file_id

    def get(self, file_id: str, office: str, now: datetime) -> _Rejected | None:
        """The workbook of `file_id` when it is `office`'s and not expired, else None."""
        with self._lock:
            found = self._files.get(file_id)
        if found is None or found.office != office or now - found.at > self.keep:
            return None
        return found


@contextmanager
def _agency_guard(source: str, what: str) -> Iterator[None]:
    """The store guard `intake-folder` writes `source` under, on the hub's Prefect API."""
    from deployments.prefect_server import configured_prefect_url, ensure_server, prefect_api
    from flows.intake_folder import intake_guard

    settings = get_settings()
    # The configured API, else the local server, which must be up: a desk never starts one
    # (a guard on a server no writer uses would guard nothing). RuntimeError when it is down.
    local = f"http://127.0.0.1:{settings.prefect_port}/api"
    server = ensure_server(settings, configured_url=configured_prefect_url() or local)
    with prefect_api(server.api_url, automations=False), intake_guard(source, what=what):
        yield


def create_app(
    engine: Engine,
    config: DeskConfig,
    *,
    calendar: WorkCalendar | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The desk's ASGI app on the store `engine` (which must be migrated)."""
    app = FastAPI(title="CETTAR Hub — Meja Kantor", docs_url=None, redoc_url=None, openapi_url=None)
    codec = SessionCodec(config.secret_key, config.idle_hours * 3600)
    limiter = LoginLimiter(config.login_max_failures, config.login_window_s)
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined
    )
    env.filters["wib"] = _wib
    env.globals.update(
        KIND_LABELS=KIND_LABELS,
        STATE_LABELS=STATE_LABELS,
        STATUS_LABELS=STATUS_LABELS,
        EVIDENCE_LABELS=EVIDENCE_LABELS,
        ROLE_LABELS=ROLE_LABELS,
        office_label=office_label,
        action_label=action_label,
        REASON_MAX=REASON_MAX,
    )
    cal = calendar or default_calendar()
    now_of = clock or (lambda: datetime.now(UTC))

    def today() -> date:
        return local_date(now_of())

    # --- plumbing ----------------------------------------------------------------------------

    @app.middleware("http")
    async def sessions(request: Request, call_next: Callable[[Request], Any]) -> Response:
        now = now_of().timestamp()
        session = codec.loads(request.cookies.get(COOKIE), now)
        request.state.session = session
        response: Response = await call_next(request)
        # Re-signed on every response: the idle time counts from the last request.
        response.set_cookie(
            COOKIE,
            codec.dumps(session, now),
            httponly=True,
            samesite="lax",
            secure=config.secure_cookies,
            path="/",
        )
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session: Session = request.state.session
        context.setdefault("viewer", None)
        html = env.get_template(template).render(csrf=session.csrf, **context)
        return HTMLResponse(html, status_code=status)

    @app.exception_handler(_Redirect)
    async def _redirect(_request: Request, exc: _Redirect) -> Response:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(_Page)
    async def _page(request: Request, exc: _Page) -> Response:
        return render(
            request,
            "message.html",
            exc.status,
            title=exc.title,
            message=exc.message,
            viewer=getattr(request.state, "viewer", None),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Tidak ditemukan", 405: "Tidak diizinkan"}
        return render(
            request,
            "message.html",
            exc.status_code,
            title=titles.get(exc.status_code, "Kesalahan"),
            message="Halaman yang diminta tidak ada atau tidak tersedia untuk akun Anda.",
            viewer=getattr(request.state, "viewer", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _exc: RequestValidationError) -> Response:
        # A mangled link or form: a page, not the framework's JSON (which echoes the input).
        return render(
            request,
            "message.html",
            400,
            title="Permintaan tidak valid",
            message="Alamat atau isian formulir ini tidak dapat dibaca.",
            viewer=getattr(request.state, "viewer", None),
        )

    def not_found(request: Request) -> _Page:
        return _Page(
            404,
            "Tidak ditemukan",
            "Serah terima ini tidak ada atau bukan untuk wilayah kantor Anda.",
        )

    def check_csrf(request: Request, token: str) -> None:
        if not request.state.session.csrf_ok(token):
            raise _Page(
                403,
                "Formulir kedaluwarsa",
                "Formulir ini tidak dapat diterima (token keamanan tidak cocok). "
                "Muat ulang halaman lalu coba lagi.",
            )

    def signed_in(request: Request, *, allow_password_change: bool = False) -> Any:
        """The account row of the session; redirects to sign-in (or to the password form)."""
        session: Session = request.state.session
        if session.account_id is None:
            raise _Redirect("/login")
        with engine.connect() as conn:
            row = get_account(conn, session.account_id)
        if row is None or not row.active or row.session_version != session.version:
            session.sign_out()
            raise _Redirect("/login")
        if row.must_change_password and not allow_password_change:
            raise _Redirect("/password")
        request.state.viewer = _viewer(row)
        return row

    def _viewer(row: Any) -> dict[str, Any]:
        account = account_of(row)
        return {
            "email": row.email,
            "office": office_label(row.office),
            "role": ROLE_LABELS[account.role],
            "summary": account.office.level in (OfficeLevel.KABUPATEN, OfficeLevel.PROVINCE),
            "scorecard": account.office.level is OfficeLevel.PROVINCE,
            "accounts": can_manage_accounts(account),
            "intake": can_upload(account),
            "must_change": bool(row.must_change_password),
        }

    # --- sign-in -----------------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/handoffs", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> HTMLResponse:
        return render(request, "login.html", error="", email="")

    @app.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        email: str = Form(""),
        password: str = Form(""),
        csrf_token: str = Form(""),
    ) -> Response:
        check_csrf(request, csrf_token)
        address = email.strip().lower()[:254]
        client = request.client.host if request.client else "-"
        now = now_of()
        wait = limiter.retry_after(address, client, now.timestamp())
        if wait > 0:
            minutes = max(1, round(wait / 60))
            page = render(
                request,
                "login.html",
                429,
                error=f"Terlalu banyak percobaan masuk. Coba lagi dalam {minutes} menit.",
                email=address,
            )
            page.headers["Retry-After"] = str(int(wait) + 1)
            return page
        with engine.connect() as conn:
            row = verify_password(conn, address, password[:1024])
            conn.commit()
        if row is None:
            limiter.failed(address, client, now.timestamp())
            return render(
                request, "login.html", 401, error="E-mail atau kata sandi salah.", email=address
            )
        limiter.succeeded(address, client)
        with write_lock(engine), engine.begin() as conn:
            record_sign_in(conn, row, now)
        request.state.session.sign_in(int(row.id), int(row.session_version))
        return RedirectResponse(
            "/password" if row.must_change_password else "/handoffs", status_code=303
        )

    @app.post("/logout")
    def logout(request: Request, csrf_token: str = Form("")) -> RedirectResponse:
        check_csrf(request, csrf_token)
        request.state.session.sign_out()
        return RedirectResponse("/login", status_code=303)

    @app.get("/password", response_class=HTMLResponse)
    def password_form(request: Request) -> HTMLResponse:
        signed_in(request, allow_password_change=True)
        return render(request, "password.html", error="", viewer=request.state.viewer)

    @app.post("/password", response_class=HTMLResponse)
    def password_change(
        request: Request,
        current: str = Form(""),
        new: str = Form(""),
        confirm: str = Form(""),
        csrf_token: str = Form(""),
    ) -> Response:
        check_csrf(request, csrf_token)
        row = signed_in(request, allow_password_change=True)

        def again(error: str, status: int = 400) -> HTMLResponse:
            return render(
                request, "password.html", status, error=error, viewer=request.state.viewer
            )

        with engine.connect() as conn:
            if verify_password(conn, row.email, current[:1024]) is None:
                return again("Kata sandi saat ini salah.", 401)
        if new != confirm:
            return again("Kata sandi baru dan ulangannya tidak sama.")
        try:
            with write_lock(engine), engine.begin() as conn:
                version = change_password(conn, int(row.id), new[:1024], now_of())
        except ValueError as exc:
            return again(f"Kata sandi ditolak: {exc}.")
        request.state.session.sign_in(int(row.id), version)
        return RedirectResponse("/handoffs", status_code=303)

    # --- the list ----------------------------------------------------------------------------

    def list_filter(status: str, kind: str, kecamatan: str, page: str) -> ListFilter:
        try:
            number = max(1, min(int(page or "1"), 100_000))
        except ValueError:
            number = 1
        return ListFilter(
            status=status if status in STATUSES else "open",
            kind=kind if kind in KIND_LABELS else "",
            kecamatan=kecamatan.strip()[:8] if kecamatan.strip()[:8].count(".") == 2 else "",
            page=number,
        )

    def query_of(flt: ListFilter, **over: Any) -> str:
        params = {"status": flt.status, "kind": flt.kind, "kecamatan": flt.kecamatan}
        params |= over
        return urlencode({k: v for k, v in params.items() if v not in ("", None)})

    @app.get("/handoffs", response_class=HTMLResponse)
    def handoff_list(
        request: Request,
        status: str = "open",
        kind: str = "",
        kecamatan: str = "",
        page: str = "1",
    ) -> HTMLResponse:
        row = signed_in(request)
        account = account_of(row)
        flt = list_filter(status, kind, kecamatan, page)
        day = today()
        size = config.page_size
        with engine.connect() as conn:
            rows, total = list_handoffs(
                conn, account, flt, day, limit=size, offset=(flt.page - 1) * size
            )
            people = people_for(conn, (r.subject_token for r in rows))
        pages = max(1, -(-total // size))
        items = [_list_item(r, people.get(r.subject_token), day) for r in rows]
        regional = account.office.level in (OfficeLevel.PROVINCE, OfficeLevel.KABUPATEN)
        return render(
            request,
            "list.html",
            viewer=request.state.viewer,
            items=items,
            flt=flt,
            total=total,
            page=flt.page,
            pages=pages,
            statuses=STATUSES,
            show_kecamatan_filter=regional,
            tab_query=lambda s: query_of(flt, status=s),
            page_query=lambda p: query_of(flt, page=p),
            export_query=query_of(flt),
        )

    def _due_text(due: date, state: str, day: date) -> tuple[str, bool]:
        if state in FINAL_STATES:
            return f"{due.isoformat()}", False
        left = cal.workdays_between(day, due)
        if due < day:
            late = max(1, -left)
            return f"{due.isoformat()} · terlambat {late} hari kerja", True
        if left == 0:
            return f"{due.isoformat()} · hari ini", False
        return f"{due.isoformat()} · {left} hari kerja lagi", False

    def _list_item(r: Any, person: Person | None, day: date) -> dict[str, Any]:
        due, overdue = _due_text(r.due_date, r.state, day)
        return {
            "id": r.id,
            "kind": r.kind,
            "state": r.state,
            "office": r.office,
            "due": due,
            "overdue": overdue,
            "escalated": r.escalated_at is not None and r.state not in FINAL_STATES,
            "name": person.name if person else "",
            "desa": person.desa_name if person else "",
            "nik": person.masked_nik if person else "",
        }

    @app.get("/handoffs.xlsx")
    def handoff_export(
        request: Request, status: str = "open", kind: str = "", kecamatan: str = ""
    ) -> Response:
        row = signed_in(request)
        account = account_of(row)
        flt = list_filter(status, kind, kecamatan, "1")
        day = today()
        with engine.connect() as conn:
            rows, _total = list_handoffs(conn, account, flt, day, limit=config.export_limit)
            people = people_for(conn, (r.subject_token for r in rows))
        body = list_workbook(rows, people, day, STATUS_LABELS[flt.status])
        name = f"serah-terima-{flt.status}-{day.isoformat()}.xlsx"
        return Response(
            body,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # --- one handoff -------------------------------------------------------------------------

    def detail(
        request: Request,
        account: Account,
        handoff_id: str,
        *,
        status: int = 200,
        revealed: Person | None = None,
        error: str = "",
        reason: str = "",
        notice: str = "",
    ) -> HTMLResponse:
        day = today()
        with engine.connect() as conn:
            try:
                h = visible_handoff(conn, account, handoff_id)
            except HandoffNotVisible:
                raise not_found(request) from None
            person = people_for(conn, [h.subject_token]).get(h.subject_token)
            trail = desk_audit_rows(conn, h.id)
        access = access_of(h)
        due, overdue = _due_text(h.due_date, h.state, day)
        return render(
            request,
            "detail.html",
            status,
            viewer=request.state.viewer,
            h=h,
            person=person,
            revealed=revealed,
            evidence=evidence_of(h),
            trail=trail,
            due=due,
            overdue=overdue,
            actions=[a.value for a in actions_for(account, access)],
            needs_reason=[DeskAction.REJECT.value, DeskAction.RETURN.value],
            can_reveal=can_reveal(account, access) and person is not None,
            is_update=h.kind == HandoffKind.HOUSEHOLD_UPDATE_VERIFICATION,
            error=error,
            reason=reason,
            notice=notice,
        )

    @app.get("/handoffs/{handoff_id}", response_class=HTMLResponse)
    def handoff_detail(request: Request, handoff_id: str, done: str = "") -> HTMLResponse:
        row = signed_in(request)
        return detail(request, account_of(row), handoff_id, notice=_OUTCOME_MESSAGES.get(done, ""))

    @app.post("/handoffs/{handoff_id}/decision", response_class=HTMLResponse)
    def handoff_decision(
        request: Request,
        handoff_id: str,
        action: str = Form(""),
        reason: str = Form(""),
        csrf_token: str = Form(""),
    ) -> Response:
        check_csrf(request, csrf_token)
        row = signed_in(request)
        account = account_of(row)
        try:
            with write_lock(engine), engine.begin() as conn:
                outcome = decide_on_desk(conn, account, handoff_id, action, reason, now_of(), cal)
        except HandoffNotVisible:
            raise not_found(request) from None
        except NotAllowed:
            raise _Page(
                403,
                "Tidak diizinkan",
                "Akun Anda tidak dapat mengambil keputusan atas serah terima ini.",
            ) from None
        except ValueError as exc:
            return detail(
                request,
                account,
                handoff_id,
                status=400,
                error=f"Keputusan belum dicatat: {exc}.",
                reason=reason[: REASON_MAX * 2],
            )
        return RedirectResponse(
            f"/handoffs/{handoff_id}?{urlencode({'done': outcome})}", status_code=303
        )

    @app.post("/handoffs/{handoff_id}/reveal", response_class=HTMLResponse)
    def handoff_reveal(request: Request, handoff_id: str, csrf_token: str = Form("")) -> Response:
        check_csrf(request, csrf_token)
        row = signed_in(request)
        account = account_of(row)
        try:
            with write_lock(engine), engine.begin() as conn:
                person = reveal_person(conn, account, handoff_id, now_of())
        except HandoffNotVisible:
            raise not_found(request) from None
        except NotAllowed:
            raise _Page(
                403,
                "Tidak diizinkan",
                "Hanya petugas kantor tujuan yang dapat membuka NIK dan No. KK lengkap.",
            ) from None
        return detail(request, account, handoff_id, revealed=person)

    # --- accounts (the province's admins) ----------------------------------------------------

    def admin(request: Request) -> Any:
        row = signed_in(request)
        if not can_manage_accounts(account_of(row)):
            raise _Page(404, "Tidak ditemukan", "Pengelolaan akun hanya untuk admin provinsi.")
        return row

    def accounts_page(
        request: Request,
        *,
        q: str = "",
        page: int = 1,
        status: int = 200,
        notice: str = "",
        error: str = "",
        secret: str = "",
    ) -> HTMLResponse:
        # Each row carries two forms: fifty keep the page well under 100 KB.
        size = 50
        with engine.connect() as conn:
            rows, total = list_accounts(conn, search=q[:60], limit=size, offset=(page - 1) * size)
        return render(
            request,
            "accounts.html",
            status,
            viewer=request.state.viewer,
            accounts=rows,
            total=total,
            q=q[:60],
            page=page,
            pages=max(1, -(-total // size)),
            roles=[r.value for r in Role],
            notice=notice,
            error=error,
            secret=secret,
        )

    @app.get("/accounts", response_class=HTMLResponse)
    def accounts(request: Request, q: str = "", page: str = "1") -> HTMLResponse:
        admin(request)
        try:
            number = max(1, min(int(page or "1"), 100_000))
        except ValueError:
            number = 1
        return accounts_page(request, q=q, page=number)

    @app.post("/accounts", response_class=HTMLResponse)
    def accounts_add(
        request: Request,
        email: str = Form(""),
        office: str = Form(""),
        role: str = Form("officer"),
        csrf_token: str = Form(""),
    ) -> HTMLResponse:
        check_csrf(request, csrf_token)
        me = admin(request)
        try:
            with write_lock(engine), engine.begin() as conn:
                secret = add_account(
                    conn, email, office, role, now_of(), actor=f"desk:{me.email}"[:60]
                )
        except ValueError as exc:
            return accounts_page(
                request, status=400, error=f"Akun tidak dibuat: {str(exc).splitlines()[0]}."
            )
        return accounts_page(
            request,
            q=email.strip().lower(),
            notice=f"Akun {email.strip().lower()} dibuat. Serahkan kata sandi sementara ini; "
            "pemiliknya harus menggantinya saat pertama masuk.",
            secret=secret,
        )

    @app.post("/accounts/{account_id}/{change}", response_class=HTMLResponse)
    def accounts_change(
        request: Request, account_id: int, change: str, csrf_token: str = Form("")
    ) -> HTMLResponse:
        check_csrf(request, csrf_token)
        me = admin(request)
        if change not in ("disable", "reset"):
            raise _Page(404, "Tidak ditemukan", "Perubahan akun ini tidak ada.")
        with engine.connect() as conn:
            target = get_account(conn, account_id)
        if target is None:
            raise _Page(404, "Tidak ditemukan", "Akun ini tidak ada.")
        if target.id == me.id:
            return accounts_page(
                request, status=400, error="Akun Anda sendiri tidak dapat diubah di sini."
            )
        actor = f"desk:{me.email}"[:60]
        with write_lock(engine), engine.begin() as conn:
            if change == "disable":
                disable_account(conn, target.email, now_of(), actor=actor)
                secret = ""
                notice = f"Akun {target.email} dinonaktifkan; sesinya berakhir."
            else:
                secret = reset_password(conn, target.email, now_of(), actor=actor)
                notice = (
                    f"Kata sandi {target.email} diatur ulang (akun aktif kembali). Serahkan "
                    "kata sandi sementara ini; pemiliknya harus menggantinya saat masuk."
                )
        return accounts_page(request, q=target.email, notice=notice, secret=secret)

    # --- the area's summary ------------------------------------------------------------------

    @app.get("/summary", response_class=HTMLResponse)
    def area_summary(request: Request) -> HTMLResponse:
        row = signed_in(request)
        account = account_of(row)
        if account.office.level not in (OfficeLevel.KABUPATEN, OfficeLevel.PROVINCE):
            raise _Page(
                404, "Tidak ditemukan", "Ringkasan wilayah untuk kabupaten/kota dan provinsi."
            )
        with engine.connect() as conn:
            rows = summary(conn, account, today())
        per = "kabupaten/kota" if account.office.level is OfficeLevel.PROVINCE else "kecamatan"
        return render(request, "summary.html", viewer=request.state.viewer, rows=rows, per=per)

    # --- the province's scorecard ------------------------------------------------------------

    @app.get("/scorecard", response_class=HTMLResponse)
    def scorecard(request: Request) -> HTMLResponse:
        row = signed_in(request)
        if account_of(row).office.level is not OfficeLevel.PROVINCE:
            raise _Page(404, "Tidak ditemukan", "Rapor kecamatan untuk akun provinsi.")
        with engine.connect() as conn:
            card = province_scorecard(conn, now_of(), cal)
        # The worst kecamatan only: all 666 lines would pass the page's 100 KB.
        worst = [r for r in card.kecamatan if r.rank is not None][:_SCORECARD_KECAMATAN]
        return render(
            request,
            "scorecard.html",
            viewer=request.state.viewer,
            card=card,
            worst=worst,
            shown=_SCORECARD_KECAMATAN,
        )

    # --- spreadsheet upload (a desa's officers) ----------------------------------------------

    rejected_files = _RejectedFiles(_REJECTED_KEEP, _REJECTED_MOST)

    def uploader(request: Request) -> Any:
        """The signed-in account when it may upload: 404 outside a desa, 403 for a viewer."""
        row = signed_in(request)
        account = account_of(row)
        if account.office.level is not OfficeLevel.DESA:
            raise _Page(404, "Tidak ditemukan", "Unggah berkas hanya untuk akun desa.")
        if not can_upload(account):
            raise _Page(403, "Tidak diizinkan", "Hanya petugas desa yang dapat mengunggah berkas.")
        return row

    def intake_page(
        request: Request,
        status: int = 200,
        *,
        error: str = "",
        result: dict[str, Any] | None = None,
    ) -> HTMLResponse:
        """The upload page: the form, the templates, an error or an upload's result."""
        limit = get_settings().intake_max_bytes
        return render(
            request,
            "intake.html",
            status,
            viewer=request.state.viewer,
            templates=[(t.source, t.title) for t in INTAKE_TEMPLATES.values()],
            limit=_size_text(limit),
            error=error,
            result=result,
        )

    def refuse(request: Request, row: Any, why: str, file_hash: str, error: str) -> HTMLResponse:
        """Audit a file refused as a whole and say why on the page."""
        status = 413 if why == "too_large" else 400
        with write_lock(engine), engine.begin() as conn:
            record_refused_file(
                conn,
                actor=f"desk:{row.email}",
                office=account_of(row).office.key,
                why=why,
                file_hash=file_hash,
                now=now_of(),
            )
        return intake_page(request, status, error=error)

    def too_large(request: Request, row: Any) -> HTMLResponse:
        """Refuse (and audit) a file over CETTAR_INTAKE_MAX_BYTES, naming the limit."""
        limit = _size_text(get_settings().intake_max_bytes)
        return refuse(
            request,
            row,
            "too_large",
            "",
            f"Berkas terlalu besar: paling besar {limit}. Pecah daftarnya menjadi beberapa "
            "berkas, atau hapus lembar dan kolom yang tidak dipakai, lalu unggah lagi.",
        )

    def result_of(result: IntakeResult, shown: str, office: str, now: datetime) -> dict[str, Any]:
        """What the result page shows of an upload; its rejected workbook kept for download."""
        counts = result.counts
        download = ""
        if result.rejected_xlsx is not None:
            file_id = rejected_files.put(office, counts.source, result.rejected_xlsx, now)
            download = f"/intake/rejected/{file_id}"
        rows = result.rejected_rows
        return {
            "file": shown,
            "title": INTAKE_TEMPLATES[counts.source].title,
            "rows": counts.rows,
            "written": counts.written,
            "unchanged": counts.unchanged,
            "rejected": counts.rejected,
            "download": download,
            "lines": [
                (
                    rej.row,
                    "; ".join(
                        f"{r.loc or 'baris'}: {safe_text(r.message, 300)}" for r in rej.reasons
                    ),
                )
                for rej in rows[:_ROWS_SHOWN]
            ],
            "more": max(0, len(rows) - _ROWS_SHOWN),
            "id_cells": any(r.code in _ID_CELL_CODES for rej in rows for r in rej.reasons),
        }

    def take_upload(request: Request, row: Any, name: str, content: bytes) -> HTMLResponse:
        """Take a desa's file as the `intake-folder` flow does: its agency's guard, audited."""
        account = account_of(row)
        office = account.office.key
        shown = safe_text(name, 80)
        now = now_of()
        try:
            source = source_of(name, content)
            with _agency_guard(source, what=f"desk upload {office}"):
                result = ingest_file(
                    engine,
                    source,
                    account.office.code,
                    name,
                    content,
                    key=get_settings().pii_key.get_secret_value().encode(),
                    now=now,
                    actor=f"desk:{row.email}",
                    office=office,
                )
        except IntakeFileError as exc:
            return refuse(
                request,
                row,
                "unreadable",
                content_hash(content),
                f"Berkas {shown} tidak dapat dibaca: {safe_text(str(exc), 600)}.",
            )
        except RuntimeError as exc:
            # The Prefect API that holds the store's guards is down, or a sync held the
            # guard past CETTAR_GUARD_WAIT_S: nothing was written.
            _LOG.warning("desk upload of %s not taken: %s", office, safe_text(str(exc), 300))
            return intake_page(
                request,
                503,
                error="Berkas belum diterima: penyimpanan sedang dipakai proses lain atau "
                "tidak dapat dihubungi. Coba unggah lagi beberapa saat lagi.",
            )
        return intake_page(request, result=result_of(result, shown, office, now))

    @app.get("/intake", response_class=HTMLResponse)
    def intake_form(request: Request) -> HTMLResponse:
        """The upload form of a desa's officer."""
        uploader(request)
        return intake_page(request)

    @app.post("/intake", response_class=HTMLResponse)
    async def intake_upload(request: Request) -> Response:
        """Take an uploaded spreadsheet for the account's desa; the body read up to the limit."""
        row = await run_in_threadpool(uploader, request)
        limit = get_settings().intake_max_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
            return await run_in_threadpool(too_large, request, row)
        # The body is read through a cap: a sender without a length stops there too.
        capped = Request(request.scope, _capped(request.receive, limit + _FORM_OVERHEAD))
        try:
            form = await capped.form(max_files=1, max_fields=4)
        except _BodyTooLarge:
            return await run_in_threadpool(too_large, request, row)
        try:
            token = form.get("csrf_token")
            check_csrf(request, token if isinstance(token, str) else "")
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                return intake_page(request, 400, error="Pilih berkas XLSX atau CSV.")
            content = await upload.read(limit + 1)
            name = PurePosixPath(upload.filename.replace("\\", "/")).name[:200]
        finally:
            await form.close()
        if len(content) > limit:
            return await run_in_threadpool(too_large, request, row)
        return await run_in_threadpool(take_upload, request, row, name, content)

    @app.get("/intake/template/{source}")
    def intake_template(request: Request, source: str) -> Response:
        """The empty XLSX template of a source."""
        uploader(request)
        if source not in INTAKE_TEMPLATES:
            raise _Page(404, "Tidak ditemukan", "Template ini tidak ada.")
        return Response(
            template_workbook(source),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="template-{source}.xlsx"'},
        )

    @app.get("/intake/rejected/{file_id}")
    def intake_rejected(request: Request, file_id: str) -> Response:
        """An upload's rejected rows as XLSX, for its own office only (404 for any other)."""
        row = uploader(request)
        found = rejected_files.get(file_id[:40], account_of(row).office.key, now_of())
        if found is None:
            raise _Page(
                404,
                "Tidak ditemukan",
                "Daftar baris yang ditolak ini tidak ada, sudah lewat sehari, atau bukan untuk "
                "desa Anda. Unggah ulang berkasnya: tidak ada yang berubah, dan baris yang "
                "ditolak dikembalikan lagi.",
            )
        name = f"ditolak-{found.source}-{local_date(found.at).isoformat()}.xlsx"
        return Response(
            found.xlsx,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return app
