"""One guard per part of the store: a Prefect global concurrency slot every writer takes.

A part is an agency's tables (`registry`, `pkh`, ...; a sync, re-sync, replay or
re-validation of its sources writes them) or `coordination` (handoffs, deliveries and the
decisions applied to them: the checks and dispatch). Every flow that writes a part holds its
guard for its whole run, whether it started from a schedule, an ad-hoc deployment or the
CLI, so two writers of one part never run side by side: the second waits, saying in its log
what it waits for and who holds it, until the first ends (or `CETTAR_GUARD_WAIT_S` passes:
then it fails saying so).

Each guard is a global concurrency limit of one slot (`cettar-store-<part>-<store>`: the
suffix tells one store from another on a shared Prefect server, so the demo's store never
waits for the real one), taken with a short lease (`CETTAR_GUARD_LEASE_S`) that a thread
renews while the run lives. A holder killed with SIGKILL stops renewing; Prefect frees its
slot when the lease runs out (about a minute). Waiters on the holder's own machine do not
wait that long: the holder writes its lease, host and process into a Prefect variable of the
guard's name, and a waiter that finds that process gone releases the lease at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

import psutil
from prefect import get_run_logger
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import VariableCreate, VariableUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.context import MissingContextError
from prefect.exceptions import ObjectAlreadyExists, PrefectHTTPStatusError
from prefect.logging import get_logger
from prefect.runtime import flow_run
from sqlalchemy.engine import make_url

from integrations.settings import get_settings
from models.sources import AGENCIES, CATALOGUE

__all__ = [
    "COORDINATION",
    "STORE_PARTS",
    "GuardTimeout",
    "guard_name",
    "parts_of_sources",
    "store_guard",
]

COORDINATION = "coordination"
STORE_PARTS: tuple[str, ...] = (*AGENCIES, COORDINATION)
"""Every guarded part of the store: one per agency's tables, and the coordination tables."""

_LOCKED = 423  # the server's answer while every slot of a limit is taken


class GuardTimeout(RuntimeError):
    """A run waited longer than `CETTAR_GUARD_WAIT_S` for a part of the store."""


def parts_of_sources(sources: Iterable[str]) -> list[str]:
    """The store parts a write to these sources (`agency.collection`) touches."""
    return sorted({CATALOGUE[str(source)].agency for source in sources})


def _store_tag() -> str:
    # The store's URL without its password: the same store gives the same guards on every
    # machine that writes it (a password change does not make a second guard).
    url = make_url(get_settings().sqlalchemy_url).set(password=None)
    return hashlib.sha256(url.render_as_string().encode()).hexdigest()[:8]


def guard_name(part: str) -> str:
    """The global concurrency limit (and holder variable) of one part of the store."""
    if part not in STORE_PARTS:
        raise ValueError(f"unknown store part {part!r}; expected one of {', '.join(STORE_PARTS)}")
    return f"cettar-store-{part}-{_store_tag()}"


def _process_start(pid: int) -> float | None:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None  # killed, not yet reaped by its parent: it renews nothing
        return process.create_time()
    except psutil.Error:
        return None


def _logger() -> Any:
    # Inside a flow run its own logger (the lines show in the UI), else the module's.
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger("cettar.guards")


def _holder_gone(holder: dict[str, Any]) -> bool:
    """Whether a holder recorded on this machine is a process that no longer runs."""
    if holder.get("host") != socket.gethostname():
        return False  # another machine's process: its lease runs out on its own
    started = _process_start(int(holder.get("pid", -1)))
    return started is None or abs(started - float(holder.get("started", 0))) > 1.0


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another run"
    run = holder.get("run") or "a command outside a flow run"
    return f"{run!r} (pid {holder.get('pid')} on {holder.get('host')})"


class _Lease:
    """One held guard: its lease renewed in a thread until released."""

    def __init__(self, client: SyncPrefectClient, names: list[str], lease_s: float) -> None:
        self.client, self.names, self.lease_s = client, names, lease_s
        self.lease_id: UUID | None = None
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name="store-guard", daemon=True)

    def _renew(self) -> None:
        # Renewed at a quarter of the lease: three renewals can fail before the slot lapses.
        while not self._stop.wait(self.lease_s / 4):
            try:
                self.client.renew_concurrency_lease(self.lease_id, lease_duration=self.lease_s)  # type: ignore[arg-type]
            except Exception as exc:  # the next renewal may succeed; the run goes on
                get_logger("cettar.guards").warning(
                    "could not renew the guard of %s: %s", ", ".join(self.names), exc
                )

    def start(self, lease_id: UUID) -> None:
        self.lease_id = lease_id
        self._renewer.start()

    def release(self) -> None:
        self._stop.set()
        if self._renewer.is_alive():
            self._renewer.join(timeout=5)
        if self.lease_id is not None:
            self.client.release_concurrency_slots_with_lease(self.lease_id)


def _read_holder(client: SyncPrefectClient, name: str) -> dict[str, Any] | None:
    variable = client.read_variable_by_name(name)
    value = variable.value if variable is not None else None
    return value if isinstance(value, dict) else None


def _write_holder(client: SyncPrefectClient, name: str, holder: dict[str, Any]) -> None:
    if client.read_variable_by_name(name) is None:
        try:
            client.create_variable(VariableCreate(name=name, value=holder, tags=["cettar"]))
            return
        except PrefectHTTPStatusError as exc:  # created meanwhile by another guard's holder
            if exc.response.status_code != 409:
                raise
    client.update_variable(VariableUpdate(name=name, value=holder))


def _release_dead_holders(client: SyncPrefectClient, names: list[str], done: set[str]) -> bool:
    """Release the leases of holders on this machine whose process is gone (each once)."""
    freed = False
    for name in names:
        holder = _read_holder(client, name)
        lease = str(holder.get("lease", "")) if holder else ""
        if holder and lease and lease not in done and _holder_gone(holder):
            # A lease id is never reused: releasing one already released changes nothing.
            client.release_concurrency_slots_with_lease(UUID(lease))
            done.add(lease)
            freed = True
    return freed


def _ensure_one_slot(client: SyncPrefectClient, name: str) -> None:
    """Create the guard's limit on first use, or put it back to one slot if someone changed it."""
    try:
        client.upsert_global_concurrency_limit_by_name(name, 1)
    except ObjectAlreadyExists:
        # Prefect's upsert reads, then creates: a run started at the same instant created it
        # between the two. The second upsert finds it.
        client.upsert_global_concurrency_limit_by_name(name, 1)


def _try_take(
    client: SyncPrefectClient,
    names: list[str],
    lease_s: float,
    holder: ConcurrencyLeaseHolder | None,
) -> tuple[UUID | None, float]:
    """The lease id when every guard was free (taken at once), else the server's wait hint."""
    try:
        response = client.increment_concurrency_slots_with_lease(
            names=names, slots=1, mode="concurrency", lease_duration=lease_s, holder=holder
        )
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code != _LOCKED:
            raise
        hint = float(exc.response.headers.get("Retry-After", 1) or 1)
        return None, min(max(hint, 0.5), 5.0)
    return UUID(response.json()["lease_id"]), 0.0


@contextlib.contextmanager
def store_guard(parts: Iterable[str], *, what: str) -> Iterator[None]:
    """Hold the guards of these store parts for the block; wait while another run holds one."""
    settings = get_settings()
    wanted = sorted(dict.fromkeys(parts))
    names = [guard_name(part) for part in wanted]
    logger = _logger()
    lease_s = float(settings.guard_lease_s)
    run_id = flow_run.get_id()
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(run_id)) if run_id else None
    with get_client(sync_client=True) as client:
        for name in names:
            _ensure_one_slot(client, name)
        waited_since = time.monotonic()
        said = False
        released: set[str] = set()
        while True:
            lease_id, hint = _try_take(client, names, lease_s, holder)
            if lease_id is not None:
                break
            if _release_dead_holders(client, names, released):
                logger.info("%s: released the guard of a run that was killed", what)
                continue
            if not said:
                holders = "; ".join(
                    f"{part} held by {_describe(_read_holder(client, name))}"
                    for part, name in zip(wanted, names, strict=True)
                )
                logger.info("%s waits for the store (%s)", what, holders)
                said = True
            if time.monotonic() - waited_since > settings.guard_wait_s:
                raise GuardTimeout(
                    f"{what} gave up after waiting {settings.guard_wait_s:.0f} s for the "
                    f"store's {', '.join(wanted)} guard (CETTAR_GUARD_WAIT_S)"
                )
            time.sleep(hint)
        if said:
            logger.info("%s holds the store's %s guard", what, ", ".join(wanted))
        lease = _Lease(client, names, lease_s)
        lease.start(lease_id)
        process = psutil.Process(os.getpid())
        record = {
            "lease": str(lease_id),
            "host": socket.gethostname(),
            "pid": process.pid,
            "started": process.create_time(),
            "run": flow_run.get_name() or what,
            "flow_run_id": run_id,
        }
        try:
            for name in names:
                _write_holder(client, name, record)
            yield
        finally:
            lease.release()
