"""The desk's web application: sign-in, the office's handoff list, one handoff, its answers.

Every page is rendered on the server (Jinja2, autoescaped) and works without JavaScript;
every form carries the session's CSRF token; a handoff outside the account's area is a 404
whatever its id. Clear NIK/No. KK appear only in the response to an officer's reveal, which
is audited and never cached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

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
from models.desk import (
    Account,
    DeskAction,
    OfficeLevel,
    Role,
    actions_for,
    can_manage_accounts,
    can_reveal,
)
from models.handoffs import FINAL_STATES, HandoffKind
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

    return app
