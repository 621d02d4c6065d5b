"""The Prefect UI, in a real browser, shows a hub run the way programme managers follow it.

One `sync-registry` run of one kabupaten/kota, recorded by a real Prefect server: its page
shows the run's name and state, its task runs and logs, and its summary artifact row by row,
and no view shows a clear NIK or No. KK.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.ui.conftest import KABUPATEN, HubRun

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# The run is named for its flow, scope and day (WIB): "sync-registry · 35.78 · 2026-12-02".
RUN_NAME = re.compile(rf"^sync-registry · {re.escape(KABUPATEN)} · \d{{4}}-\d{{2}}-\d{{2}}$")
KABUPATEN_NAME = "Kota Surabaya"
# A clear NIK or No. KK: 16 digits in a row (masks keep 8 digits; tokens are hex).
CLEAR_ID = re.compile(r"\d{16}")


def _assert_no_clear_ids(page: Page, view: str) -> None:
    text = page.locator("body").inner_text()
    found = len(CLEAR_ID.findall(text))
    assert found == 0, f"{view} shows {found} clear 16-digit IDs"  # counted, never printed


def _open_tab(page: Page, name: str) -> None:
    # The run page's tabs are list items of a `tablist` (they carry no `tab` role).
    page.get_by_role("tablist").get_by_text(name, exact=True).click()


def _task_run_rows(page: Page) -> Locator:
    return page.locator(".task-run-list-item")


def _reasons(summary: dict[str, Any], collection: str) -> str:
    prefix = f"{collection}/"
    reasons = summary["quarantine_reasons"]
    return ", ".join(
        f"{key.removeprefix(prefix)} {n}"
        for key, n in sorted(reasons.items())
        if key.startswith(prefix)
    )


def test_run_page_shows_the_run_its_state_logs_and_task_runs(page: Page, hub_run: HubRun) -> None:
    from playwright.sync_api import expect

    households = hub_run.summary["totals"]["registry.households"]
    task_runs = hub_run.summary["partitions"] + 1  # one per partition, plus preparing the store

    import httpx

    # The hub's own server (not the session's test server) holds this run.
    name = httpx.get(f"{hub_run.ui_url}/api/flow_runs/{hub_run.flow_run_id}").json()["name"]
    assert RUN_NAME.match(name), name
    page.goto(hub_run.page_url)
    expect(page).to_have_title(re.compile(re.escape(name)))
    heading = page.locator("header").filter(
        has=page.get_by_role("navigation").filter(has_text=name)
    )
    expect(heading.get_by_text(name, exact=True)).to_be_visible()
    expect(heading.get_by_text("Completed", exact=True)).to_be_visible()
    expect(heading.get_by_text(f"{task_runs} Task runs", exact=True)).to_be_visible()

    # The Logs tab opens first: the partition's counts reached the server with its logs.
    expect(
        page.get_by_text(
            f"registry.households {KABUPATEN}: {households['fetched']} fetched, "
            f"{households['upserted']} upserted, {households['unchanged']} unchanged, "
            f"{households['quarantined']} quarantined"
        )
    ).to_be_visible()
    _assert_no_clear_ids(page, "the Logs tab")

    _open_tab(page, "Task Runs")
    partition = _task_run_rows(page).filter(
        has=page.get_by_role("link", name=f"registry {KABUPATEN}", exact=True)
    )
    expect(partition.get_by_text("Completed", exact=True)).to_be_visible()
    prepare = _task_run_rows(page).filter(
        has=page.get_by_role("link", name=re.compile(r"^prepare-store"))
    )
    expect(prepare.get_by_text("Completed", exact=True)).to_be_visible()
    expect(_task_run_rows(page)).to_have_count(task_runs)
    _assert_no_clear_ids(page, "the Task Runs tab")


def test_artifacts_tab_shows_the_registry_sync_summary_table(page: Page, hub_run: HubRun) -> None:
    from playwright.sync_api import expect

    totals = hub_run.summary["totals"]
    # Quarantined records are where clear IDs would leak: the run must have some.
    assert sum(t["quarantined"] for t in totals.values()) > 0, totals

    page.goto(hub_run.page_url)
    _open_tab(page, "Artifacts")
    expect(page.get_by_role("link").filter(has_text="registry-sync-report")).to_be_visible()
    card = page.get_by_role("link").filter(has_text="registry-sync-summary")
    expect(card).to_contain_text("table", ignore_case=True)
    expect(card).to_contain_text(f"Registry sync per kabupaten/kota · {KABUPATEN}")
    _assert_no_clear_ids(page, "the Artifacts tab")

    card.click()
    page.wait_for_url(re.compile(r"/artifacts/artifact/[0-9a-f-]{36}$"))
    expect(page).to_have_title(re.compile("registry-sync-summary"))
    table = page.get_by_role("table")
    expect(table.get_by_role("columnheader")).to_have_text(
        [
            "source",
            "partition",
            "name",
            "fetched",
            "upserted",
            "unchanged",
            "quarantined",
            "quarantine reasons",
            "failure",
        ]
    )
    expect(table.locator("tbody").get_by_role("row")).to_have_count(len(totals))
    for collection, t in totals.items():
        # Text cells render through markdown (an <article>), so match the text, not the name.
        row = table.get_by_role("row").filter(has=page.get_by_text(collection, exact=True))
        expect(row.get_by_role("cell")).to_have_text(
            [
                collection,
                KABUPATEN,
                KABUPATEN_NAME,
                str(t["fetched"]),
                str(t["upserted"]),
                str(t["unchanged"]),
                str(t["quarantined"]),
                _reasons(hub_run.summary, collection),
                "",
            ]
        )
    _assert_no_clear_ids(page, "the registry-sync-summary artifact")


def test_event_feed_shows_the_hubs_event_and_the_automations_page_its_automations(
    page: Page, hub_run: HubRun, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from deployments.automations import CRASH_DEAD_RUNS
    from flows.signals import QUARANTINE_SPIKE

    # The run quarantined far more than CETTAR_QUARANTINE_ALERT_RATE of its records: the
    # hub's event is in the server's event feed, naming the source, never a person.
    quarantined = sum(t["quarantined"] for t in hub_run.summary["totals"].values())
    assert quarantined > 0
    page.goto(f"{hub_run.ui_url}/events")
    spike = page.get_by_text(QUARANTINE_SPIKE).first
    expect(spike).to_be_visible()
    _assert_no_clear_ids(page, "the event feed")
    spike.scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "prefect-ui-event-feed.png")

    # The automation the hub applied to its server when the run started (the alert and
    # re-run automations need their deployments, which this server does not have).
    page.goto(f"{hub_run.ui_url}/automations")
    expect(page.get_by_text(CRASH_DEAD_RUNS, exact=True)).to_be_visible()
    page.screenshot(path=tmp_path / "prefect-ui-automations.png", full_page=True)
    print(f"screenshots in {tmp_path}")
