"""E-mail through the hub's own SMTP settings (alerts now; the office desk's digests next)."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.message import EmailMessage

from integrations.settings import Settings

__all__ = ["MailNotConfigured", "send_mail"]


class MailNotConfigured(RuntimeError):
    """No SMTP host or no recipient is configured."""


def send_mail(settings: Settings, to: Sequence[str], subject: str, body: str) -> int:
    """Send one plain-text message to `to`; return how many recipients the server accepted."""
    if not settings.smtp_host:
        raise MailNotConfigured("CETTAR_SMTP_HOST is not set: no mail server to send through")
    if not to:
        raise MailNotConfigured("no recipient: set CETTAR_ALERT_EMAIL_TO")
    message = EmailMessage()
    message["From"] = settings.smtp_sender
    message["To"] = ", ".join(to)
    # A subject is one line: an alert's text must not add headers.
    message["Subject"] = " ".join(subject.split())[:200]
    message.set_content(body)
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username and settings.smtp_password is not None:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        refused = smtp.send_message(message)
    return len(to) - len(refused)
