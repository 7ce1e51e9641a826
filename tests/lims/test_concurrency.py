"""The same result sent twice at the same moment (a LIMS retrying on a timeout): one effect."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from batchline.audit.services import Actor
from batchline.audit.verify import verify
from batchline.execution.models import Batch, BatchException, StepValue
from batchline.lims.models import LabResult
from batchline.lims.services import Incoming, results_receive
from tests.lims.plant import blend_samples, make_lims_plant, new_batch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.req("A11-07", "NFR-06", "IPC-01")
def test_the_same_result_at_the_same_moment_has_one_effect(live_db) -> None:
    people, recipe, _lot = make_lims_plant()  # committed: each thread reads it on its own connection
    batch = new_batch(people, recipe)
    top, _bottom = blend_samples(people, batch)
    incoming = Incoming(result_id="QC-RETRY-1", sample=top.code, test="Blend assay", value="93.0", unit="%")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def send() -> None:
        try:
            barrier.wait()
            [received] = results_receive(
                actor=Actor.of(people["lims"], via="api"),
                results=[incoming],
                via="json",
                message_sha256="0" * 64,
            )
            outcomes.append("duplicate" if received.duplicate else "recorded")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["duplicate", "recorded"], outcomes
    assert LabResult.objects.count() == 1 and StepValue.objects.filter(sample=top).count() == 1
    assert BatchException.objects.filter(code="LAB_OUT_OF_SPECIFICATION").count() == 1
    assert Batch.objects.get(pk=batch.pk).blocking_exceptions == 1
    assert verify().ok
