"""The hub's one configuration object: every knob is a `CETTAR_*` environment variable."""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, create_model, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.sources import AGENCIES

__all__ = ["AGENCIES", "DEVELOPMENT_PII_KEY", "Settings", "get_settings", "sandbox_token"]

DEVELOPMENT_PII_KEY = "cettar-development-key-change-me"
"""The PII key of the demo and the tests: public, so it must never key real ids."""


def sandbox_token(agency: str) -> str:
    """The public bearer token the sandbox agencies accept by default."""
    return f"sandbox-{agency}-token"


def _off_this_machine(url: str) -> bool:
    # Loopback is the sandbox (demo, tests); any other host may be a real agency. A URL
    # without a host is no agency at all: the client refuses it with its own message.
    host = (urlsplit(url).hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _endpoint_fields() -> dict[str, Any]:
    # One base URL and bearer token per agency of the source catalogue, so a new agency
    # needs no settings code: `CETTAR_<AGENCY>_URL` and `CETTAR_<AGENCY>_TOKEN` just work.
    # The defaults are the local sandbox.
    fields: dict[str, Any] = {}
    for agency in AGENCIES:
        fields[f"{agency}_url"] = (str, f"http://127.0.0.1:8765/{agency}")
        fields[f"{agency}_token"] = (SecretStr, SecretStr(sandbox_token(agency)))
    return fields


_AgencyEndpoints: Any = create_model(
    "_AgencyEndpoints", __base__=BaseSettings, **_endpoint_fields()
)


class Settings(_AgencyEndpoints):
    """Hub configuration with embedded defaults: SQLite store, local sandbox agencies."""

    model_config = SettingsConfigDict(env_prefix="CETTAR_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path.home() / ".cettar", description="Where the store lives.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file under data_dir."
    )

    # Keyed tokens of NIK / No. KK (HMAC); production sets its own secret.
    pii_key: SecretStr = SecretStr(DEVELOPMENT_PII_KEY)

    http_timeout_s: float = 30.0
    http_connect_timeout_s: float = 5.0
    http_max_attempts: int = Field(default=6, ge=1, le=20)
    http_backoff_base_s: float = 0.2
    http_backoff_max_s: float = 10.0
    http_retry_after_max_s: float = 60.0
    http_max_concurrency: int = Field(default=8, ge=1)

    page_limit: int = Field(default=1000, ge=1, le=5000)
    # Handoff deliveries per request to the office inbox: 1 posts each on its own
    # (`POST /v1/handoffs`), more go as batches (`POST /v1/handoff-batches`, at most 500).
    inbox_batch_size: int = Field(default=100, ge=1, le=500)
    # Partitions synced at once. 1 (default) runs them in turn, each reading ahead in a
    # thread, which suits the single-writer SQLite store; more run in as many processes.
    sync_workers: int = Field(default=1, ge=1, le=64)
    # Or on a Dask cluster (prefect-dask): "dask" runs them on the scheduler at `dask_address`
    # (workers on other machines, each started with this same configuration), else on a
    # local cluster of `dask_workers` processes. A scheduler address alone chooses Dask.
    task_runner: str = Field(default="local", pattern="^(local|dask)$")
    dask_address: str | None = None
    dask_workers: int = Field(default=2, ge=1, le=64)
    # Worker processes that validate pages while the sync writes (0, the default: in-process;
    # more pays off only with cores to spare beside the agencies and the store).
    prepare_processes: int = Field(default=0, ge=0, le=64)
    # Records per store transaction (whole pages; each page's cursor commits with its rows).
    commit_records: int = Field(default=5000, ge=1)
    # People (NIK tokens) a cross-programme check reads and checks at a time: its memory
    # follows this, not the province (the deceased-or-moved check of Jawa Timur found
    # 136,766 of them).
    check_page_subjects: int = Field(default=20_000, ge=1)

    # A sync run in which more than this share of a source's records is quarantined emits
    # `cettar.quarantine.spike` (flows/signals.py): the province is notified.
    quarantine_alert_rate: float = Field(default=0.05, gt=0, le=1)

    # Alerts (deployments/automations.py): a Prefect notification block by name (e.g. a
    # custom webhook) gets every alert, and the `alert-mail` deployment mails them through
    # the hub's own SMTP settings (the office desk mails through the same server).
    alert_webhook_block: str | None = None
    alert_email_to: list[str] = Field(default_factory=list)
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_sender: str = "CETTAR Hub <cettar-hub@localhost>"
    smtp_timeout_s: float = Field(default=30.0, gt=0)

    prefect_port: int = 4200
    # Seconds between the heartbeats every hub flow run sends (Prefect's floor is 30), and
    # how long after the last one a run still Running is marked Crashed by the automation
    # (`deployments/automations.py`). 60 s / 240 s: a dead run is Crashed within about four
    # minutes, and runs beating at Prefect's own default (180 s) are not taken for dead.
    flow_heartbeat_s: int = Field(default=60, ge=30, le=3600)
    flow_crash_after_s: int = Field(default=240, ge=31, le=86_400)

    # Store guards (flows/guards.py): a writer's lease on its part of the store lasts this
    # long unless renewed (Prefect's floor is 60 s; renewed at a quarter of it), and a run
    # waits at most this long for a part another run holds, then fails saying so.
    guard_lease_s: int = Field(default=60, ge=60, le=3600)
    guard_wait_s: float = Field(default=6 * 3600, gt=0)

    # Quarantined payloads hold clear ids: kept this long after their last sighting, then
    # purged by the `purge-quarantine` flow.
    quarantine_retention_days: int = Field(default=90, ge=1, le=3650)

    @model_validator(mode="after")
    def _crash_after_heartbeat(self) -> Settings:
        # A threshold at or under the heartbeat interval would crash runs that are alive.
        if self.flow_crash_after_s <= self.flow_heartbeat_s:
            raise ValueError("flow_crash_after_s must be longer than flow_heartbeat_s")
        return self

    @model_validator(mode="after")
    def _no_public_secrets_for_real_agencies(self) -> Settings:
        # The development PII key and the sandbox tokens are public: with them a real NIK's
        # token could be recomputed by anyone, and a real agency would be sent a known
        # password. Agencies on loopback are the sandbox (demo, tests); any other host is
        # treated as real.
        remote = [a for a in AGENCIES if _off_this_machine(getattr(self, f"{a}_url"))]
        if not remote:
            return self
        public = [
            f"CETTAR_{a.upper()}_TOKEN"
            for a in remote
            if getattr(self, f"{a}_token").get_secret_value() == sandbox_token(a)
        ]
        if self.pii_key.get_secret_value() == DEVELOPMENT_PII_KEY:
            public.insert(0, "CETTAR_PII_KEY")
        if public:
            hosts = sorted({urlsplit(getattr(self, f"{a}_url")).hostname or "" for a in remote})
            raise ValueError(
                f"agencies off this machine ({', '.join(hosts)}) need the hub's own secrets; "
                f"still the public development value: {', '.join(public)}"
            )
        return self

    def agency_endpoint(self, agency: str) -> tuple[str, str]:
        """The base URL and bearer token of an agency; ValueError for an unknown agency."""
        if agency not in AGENCIES:
            raise ValueError(f"unknown agency {agency!r}; expected one of {', '.join(AGENCIES)}")
        url: str = getattr(self, f"{agency}_url")
        token: SecretStr = getattr(self, f"{agency}_token")
        return url, token.get_secret_value()

    @property
    def sqlalchemy_url(self) -> str:
        """The store URL: configured, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'cettar.db'}"

    # --- health zones (models/zones.py) -----------------------------------------------------
    # Weekly new cases per 100,000 people at which a desa or kecamatan turns yellow, orange
    # and red; fewer than `health_min_cases` cases never go past yellow. Each daily run
    # re-evaluates the last `health_weeks` complete ISO weeks (late reports are counted).
    health_yellow_per_100k: float = Field(default=10.0, gt=0)
    health_orange_per_100k: float = Field(default=20.0, gt=0)
    health_red_per_100k: float = Field(default=40.0, gt=0)
    health_min_cases: int = Field(default=5, ge=1, le=10_000)
    health_weeks: int = Field(default=8, ge=1, le=104)

    @model_validator(mode="after")
    def _health_thresholds_rise(self) -> Settings:
        if not self.health_yellow_per_100k < self.health_orange_per_100k < self.health_red_per_100k:
            raise ValueError(
                "the health thresholds must rise: "
                "CETTAR_HEALTH_YELLOW_PER_100K < _ORANGE_PER_100K < _RED_PER_100K"
            )
        return self

    # --- office desk (`cettar desk`) ---------------------------------------------------------
    # Signs the desk's session cookies (production sets its own secret; changing it signs
    # everyone out). Sessions end after this many idle hours; an account+address pair is
    # refused sign-in for the window after this many wrong passwords in it. Secure cookies
    # are for a desk served over HTTPS (behind a TLS proxy).
    desk_secret_key: SecretStr = SecretStr("cettar-desk-development-key-change-me")
    desk_session_idle_hours: float = Field(default=8.0, gt=0, le=720)
    desk_login_max_failures: int = Field(default=5, ge=1, le=100)
    desk_login_window_s: int = Field(default=900, ge=1, le=86_400)
    desk_secure_cookies: bool = False
    # Which offices work on the desk (JSON: office key or region code -> "desk" | "both" |
    # "inbox"; read by `models.desk.OfficeChannels`); the rest stay on the inbox API. The
    # desk's address as its users reach it: the digests' links start with it.
    desk_offices: dict[str, str] = Field(default_factory=dict)
    desk_url: str = "http://127.0.0.1:8080"
    # --- spreadsheet intake (`intake-folder`) -----------------------------------------------
    # The watched folder: one sub-folder per desa code, which only that desa's operators may
    # write; unset, `<data dir>/intake`.
    intake_dir: Path | None = None
    # Largest file the desk's "Unggah berkas" page takes (bytes; a desa's list is far less).
    intake_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
