"""The desk's daily digests: one mail per desk office and one per kabupaten/kota, once a day.

Offices on the desk (`CETTAR_DESK_OFFICES`: desk or both) with active accounts get their
day's counts (new, due soon, overdue) and links; each kabupaten/kota with active accounts
gets its escalations. Mails carry counts, handoff ids and links, never a person: the text
is masked once more before it leaves all the same.
"""

from __future__ import annotations

import smtplib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from integrations.mail import send_mail
from integrations.settings import Settings, get_settings
from integrations.store.desk_digest import (
    claim_digest,
    claimed_on,
    digest_recipients,
    digest_sent,
    escalation_digest,
    office_digest,
    release_digest,
)
from integrations.store.engine import get_engine, require_store, write_lock
from models.desk import OfficeChannels, digest_mail, escalation_mail
from models.identity import mask_ids_in_text
from models.workdays import WorkCalendar, default_calendar, local_date, operator_instant

__all__ = ["Mailer", "send_desk_digests", "send_digests"]

Mailer = Callable[[Settings, Sequence[str], str, str], int]
"""How a digest leaves: `integrations.mail.send_mail` (tests may pass another)."""

_KABUPATEN = "kabupaten:"


def send_digests(
    engine: Engine,
    settings: Settings,
    now: datetime,
    calendar: WorkCalendar | None = None,
    mailer: Mailer = send_mail,
) -> dict[str, int]:
    """Mail the day's digests not sent yet; counts of sent, already sent, empty, failed."""
    cal = calendar or default_calendar()
    channels = OfficeChannels.parse(settings.desk_offices)
    today = local_date(now)
    with engine.connect() as conn:
        recipients = digest_recipients(conn)
        done = claimed_on(conn, today)
    counts: Counter[str] = Counter()
    for office, emails in sorted(recipients.items()):
        kind = "escalations" if office.startswith(_KABUPATEN) else "office"
        if kind == "office" and not channels.on_desk(office):
            continue  # an inbox office answers in its own system, not on the desk
        if (office, kind) in done:
            counts["already_sent"] += 1
            continue
        with engine.connect() as conn:
            if kind == "office":
                digest = office_digest(conn, office, now, today, cal)
                worth = digest.worth_sending
                subject, body = digest_mail(digest, settings.desk_url)
            else:
                escalations = escalation_digest(conn, office, now, today, cal)
                worth = escalations.worth_sending
                subject, body = escalation_mail(escalations, settings.desk_url)
        if not worth:
            counts["nothing_to_report"] += 1
            continue
        with write_lock(engine), engine.begin() as conn:
            claimed = claim_digest(conn, office, today, kind, now)
        if not claimed:
            counts["already_sent"] += 1
            continue
        try:
            accepted = mailer(settings, emails, mask_ids_in_text(subject), mask_ids_in_text(body))
        except (smtplib.SMTPException, OSError):
            # Released: the next run of the day tries this office again.
            with write_lock(engine), engine.begin() as conn:
                release_digest(conn, office, today, kind)
            counts["failed"] += 1
            continue
        with write_lock(engine), engine.begin() as conn:
            digest_sent(conn, office, today, kind, accepted, now)
        counts[f"sent_{kind}"] += 1
        counts["recipients"] += accepted
    return dict(sorted(counts.items()))


@task(name="send-desk-digests", cache_policy=NO_CACHE)
def send_desk_digests(as_of: datetime | None = None) -> dict[str, int]:
    """Mail each desk office its daily digest and each kabupaten/kota its escalations."""
    engine = get_engine()
    require_store(engine)
    counts = send_digests(engine, get_settings(), operator_instant(as_of))
    get_run_logger().info("desk digests: %s", counts)
    return counts
