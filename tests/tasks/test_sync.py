"""The partition sync task: one retry policy, counts per collection, unknown collections refused."""

from __future__ import annotations

import pytest

from tasks.sync import retry_transient, sync_partition


def test_the_partition_task_retries_only_transient_agency_errors() -> None:
    assert sync_partition.retries == 2
    assert sync_partition.retry_delay_seconds == [5, 30]
    assert sync_partition.retry_condition_fn is retry_transient


def test_a_collection_the_catalogue_does_not_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="pkh has no collection 'visits'"):
        sync_partition.fn("pkh", ["visits"], "35.78", ["35.78.01"])
