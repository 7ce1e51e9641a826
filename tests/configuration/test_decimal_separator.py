"""The site's decimal separator is a GMP setting under change control: it decides how values are judged (DI-05)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from batchline.configuration import definitions
from batchline.configuration.selectors import current
from batchline.execution import services as ex
from batchline.execution.models import StepValue
from batchline.rules.numbers import COMMA, POINT
from tests.configuration.test_configuration import approve, request_change
from tests.conftest import make_user
from tests.execution.test_engine import A, make_plant, new_batch, run_to_weights

pytestmark = pytest.mark.django_db


@pytest.mark.req("P11-11", "DI-05")
def test_a_new_installation_writes_decimals_with_a_point_unless_its_environment_says_comma() -> None:
    assert (current().decimal_separator, current().notation) == ("point", POINT)
    assert definitions.seed_values({"BATCHLINE_DECIMAL_SEPARATOR": "comma"})["decimal_separator"] == "comma"
    with pytest.raises(
        definitions.Invalid, match="Decimal separator: 'semicolon' is not one of: point, comma"
    ):
        definitions.seed_values({"BATCHLINE_DECIMAL_SEPARATOR": "semicolon"})


@pytest.mark.req("P11-11", "A11-14", "DI-05")
def test_changing_the_separator_takes_a_signed_request_and_a_qa_approval_and_then_decides_how_entries_read() -> (
    None
):
    people, recipe = make_plant()
    admin = make_user("admin", ["administrator"])
    batch = new_batch(people, recipe)
    run_to_weights(people, batch)
    op = people["operator"]

    def complete(w1: str) -> None:
        ex.step_complete(
            actor=A(op), user=op, batch=batch, step_key="weights", entries={"w1": w1, "w2": "600"}
        )

    request = request_change(admin, {"decimal_separator": "comma"})
    assert "Decimal separator: point → comma" in request.summary
    with pytest.raises(ex.ExecutionRefused, match="600,5: this site writes decimals with a point"):
        complete("600,5")  # requested, not yet in force
    approve(people["approver"], request)
    assert current().notation == COMMA
    complete("600,5")
    assert StepValue.objects.get(name="w1").number == Decimal("600.5")


@pytest.mark.req("P11-11")
def test_the_setting_is_offered_as_a_choice_on_the_configuration_page(login, personas) -> None:
    page = login(personas["admin"]).get("/configuration/").content.decode()
    assert 'name="setting_decimal_separator"' in page and '<option value="comma">comma</option>' in page
    assert '<option value="point" selected>point</option>' in page
