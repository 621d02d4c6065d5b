"""Deployments: names, Jakarta-time schedules, a typed parameter form for operators."""

from __future__ import annotations

from prefect.utilities.callables import parameter_schema

from deployments.serve import build_deployments
from flows.check_overlaps import check_programme_overlaps
from flows.daily_coordination import daily_coordination
from flows.dispatch_handoffs import dispatch_handoffs
from flows.kecamatan_scorecard import kecamatan_scorecard
from flows.sync_registry import sync_registry


def test_deployments_have_schedules_and_typed_parameters() -> None:
    deps = {d.name: d for d in build_deployments()}
    assert set(deps) == {
        "registry-nightly",
        "registry-adhoc",
        "daily-coordination",
        "dispatch-office-hours",
        "desk-digest",
        "checks-adhoc",
        "scorecard-adhoc",
        "audit-nightly",
        "purge-quarantine",
        "resync-source",
        "rerun-failed-partitions",
        "reconcile-region",
        "replay-quarantine",
        "revalidate-store",
        "alert-mail",
        "intake-folder",
    }
    # The working-day deployments skip holidays and cuti bersama (the crons only know
    # Monday-Friday); the others run every day or when started.
    working_days = {n for n, d in deps.items() if d.parameters.get("skip_days_off")}
    assert working_days == {"daily-coordination", "dispatch-office-hours", "desk-digest"}
    # Every deployment and every flow it runs says what it is for (the UI shows both).
    from deployments.serve import DEPLOYMENTS

    for d in DEPLOYMENTS:
        assert deps[d.name].description and d.flow().description, d.name
    daily = deps["daily-coordination"]
    (every_morning,) = daily.schedules
    # Working days only, before the offices open, in Jakarta time.
    assert every_morning.schedule.cron == "30 5 * * 1-5"
    assert every_morning.schedule.timezone == "Asia/Jakarta"
    assert daily.concurrency_limit == 1
    (hourly,) = deps["dispatch-office-hours"].schedules
    assert hourly.schedule.cron == "0 8-16 * * 1-5"
    assert deps["checks-adhoc"].schedules == deps["scorecard-adhoc"].schedules == []
    nightly = deps["registry-nightly"]
    (schedule,) = nightly.schedules
    assert schedule.schedule.cron == "0 2 * * *"
    assert schedule.schedule.timezone == "Asia/Jakarta"
    assert nightly.concurrency_limit == 1
    assert deps["registry-adhoc"].schedules == []
    # Files dropped in the desa folders are taken within a quarter of an hour, one run at a time.
    intake = deps["intake-folder"]
    (quarterly,) = intake.schedules
    assert quarterly.schedule.cron == "*/15 * * * *"
    assert quarterly.schedule.timezone == "Asia/Jakarta"
    assert intake.concurrency_limit == 1
    assert "skip_days_off" not in intake.parameters
    # The UI renders this schema as a form: kabupaten/kecamatan lists, collections enum, bounds.
    schema = parameter_schema(sync_registry).model_dump()
    assert schema["properties"]["scope"]["$ref"] == "#/definitions/RegionScope"
    scope = schema["definitions"]["RegionScope"]["properties"]
    assert set(scope) == {"kabupaten", "kecamatan"}
    assert {"scope", "collections", "full_resync", "page_limit"} == set(schema["properties"])
    assert schema["properties"]["page_limit"]["anyOf"][0]["maximum"] == 5000
    assert schema["definitions"]["Collection"]["enum"] == ["households", "recipients"]
    # Every coordination flow takes the same scope form.
    for flow in (
        daily_coordination,
        check_programme_overlaps,
        dispatch_handoffs,
        kecamatan_scorecard,
    ):
        props = parameter_schema(flow).model_dump()["properties"]
        assert props["scope"]["$ref"] == "#/definitions/RegionScope", flow.name


def test_prefect_yaml_is_generated_from_the_one_list() -> None:
    from pathlib import Path

    import yaml

    from deployments.serve import DEPLOYMENTS, prefect_yaml

    committed = (Path(__file__).parents[2] / "prefect.yaml").read_text()
    # Regenerate with `cettar deployments yaml > prefect.yaml` after editing DEPLOYMENTS.
    assert committed == prefect_yaml()
    spec = yaml.safe_load(committed)
    assert [d["name"] for d in spec["deployments"]] == [d.name for d in DEPLOYMENTS]
    for d in spec["deployments"]:
        module = d["entrypoint"].partition(":")[0]
        assert Path(__file__).parents[2].joinpath(module).is_file(), d["name"]
        assert d["work_pool"] == {"name": "cettar-process"}
