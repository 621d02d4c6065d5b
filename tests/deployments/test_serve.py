"""Deployments: names, Jakarta-time schedules, a typed parameter form for operators."""

from __future__ import annotations

from prefect.utilities.callables import parameter_schema

from deployments.serve import build_deployments
from flows.sync_registry import sync_registry


def test_deployments_have_schedules_and_typed_parameters() -> None:
    deps = {d.name: d for d in build_deployments()}
    assert set(deps) == {"registry-nightly", "registry-adhoc"}
    nightly = deps["registry-nightly"]
    (schedule,) = nightly.schedules
    assert schedule.schedule.cron == "0 2 * * *"
    assert schedule.schedule.timezone == "Asia/Jakarta"
    assert nightly.concurrency_limit == 1
    assert deps["registry-adhoc"].schedules == []
    # The UI renders this schema as a form: kabupaten/kecamatan lists, collections enum, bounds.
    schema = parameter_schema(sync_registry).model_dump()
    assert schema["properties"]["scope"]["$ref"] == "#/definitions/SyncScope"
    scope = schema["definitions"]["SyncScope"]["properties"]
    assert {"kabupaten", "kecamatan", "collections", "full_resync", "page_limit"} <= set(scope)
    assert schema["definitions"]["Collection"]["enum"] == ["households", "recipients"]
