"""The `send-alert` flow: an automation's alert mailed to the province (CETTAR_ALERT_EMAIL_TO)."""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from flows.common import run_name
from integrations.mail import send_mail
from integrations.settings import get_settings
from models.identity import mask_ids_in_text

__all__ = ["send_alert"]

Subject = Annotated[str, Field(min_length=1, max_length=300)]
Body = Annotated[str, Field(max_length=20_000)]


@flow(name="send-alert", flow_run_name=run_name("send-alert"), log_prints=False)
def send_alert(subject: Subject, body: Body = "") -> dict[str, Any]:
    """Mail one alert to the configured recipients through the hub's SMTP server."""
    settings = get_settings()
    # Alerts are built from events, which hold no person; masked again all the same.
    accepted = send_mail(
        settings, settings.alert_email_to, mask_ids_in_text(subject), mask_ids_in_text(body)
    )
    get_run_logger().info("alert mailed to %d recipients", accepted)
    return {"recipients": accepted}
