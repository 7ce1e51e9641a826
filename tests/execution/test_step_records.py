"""Sampling, output and labelling steps and a timer's measured duration, through the engine on a real database."""

from __future__ import annotations

import pytest

from batchline.audit.verify import verify
from tests.execution.steps_plant import make_steps_plant, run_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def plant(db):
    return make_steps_plant()


def test_smoke(plant) -> None:
    people, recipe = plant
    batch = run_all(people, recipe)
    assert batch.state == "complete"
    assert verify().ok
