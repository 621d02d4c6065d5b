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
        "checks-adhoc",
        "scorecard-adhoc",
    }
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


def test_prefect_yaml_matches_the_served_deployments() -> None:
    import importlib
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text())
    served = {d.name: d for d in build_deployments()}
    listed = {d["name"]: d for d in spec["deployments"]}
    assert set(listed) == set(served)
    for name, dep in listed.items():
        module, _, attr = dep["entrypoint"].partition(":")
        flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), attr)
        assert flow.name == served[name].flow_name, name
        crons = [s["cron"] for s in dep.get("schedules", [])]
        assert crons == [s.schedule.cron for s in served[name].schedules], name
