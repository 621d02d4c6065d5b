"""What the desk server needs to know, read once from the hub's settings."""

from __future__ import annotations

from dataclasses import dataclass

from integrations.settings import Settings

__all__ = ["DeskConfig"]


@dataclass(frozen=True, slots=True)
class DeskConfig:
    """The desk's secrets and limits (see the `desk_*` settings)."""

    secret_key: str
    idle_hours: float = 8.0
    login_max_failures: int = 5
    login_window_s: int = 900
    secure_cookies: bool = False
    page_size: int = 50
    # Rows of one XLSX download at most: an office's list, not the province's archive.
    export_limit: int = 20_000

    @classmethod
    def from_settings(cls, settings: Settings) -> DeskConfig:
        """The desk configuration of the hub's settings."""
        return cls(
            secret_key=settings.desk_secret_key.get_secret_value(),
            idle_hours=settings.desk_session_idle_hours,
            login_max_failures=settings.desk_login_max_failures,
            login_window_s=settings.desk_login_window_s,
            secure_cookies=settings.desk_secure_cookies,
        )
