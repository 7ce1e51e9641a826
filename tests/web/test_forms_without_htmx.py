"""Every htmx form posts on its own too: typed before htmx binds it (a fast scanner), or with
JavaScript off, it never turns into a GET that would put its CSRF token or a password in the URL."""

from __future__ import annotations

import re

import pytest

from tests.execution.test_engine import make_plant, new_batch, start

pytestmark = pytest.mark.django_db


@pytest.mark.req("P11-04")
def test_every_form_on_the_execution_screen_posts_to_its_own_action_without_htmx(client) -> None:
    people, recipe = make_plant()
    batch = new_batch(people, recipe)
    start(people, batch, "clearance")
    client.force_login(people["operator"])
    page = client.get(f"/batches/{batch.number}/?step=clearance").content.decode()
    forms = re.findall(r"<form[^>]*>", page)
    htmx_forms = [f for f in forms if "hx-post=" in f]
    assert len(htmx_forms) >= 2, forms  # scan, complete
    for tag in htmx_forms:
        assert 'method="post"' in tag, tag
        assert re.search(r'action="([^"]+)"', tag).group(1) == re.search(r'hx-post="([^"]+)"', tag).group(1)
    # A scan posted without htmx answers with the whole page, the refusal in words on it.
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    plain = client.post(
        f"/batches/{batch.number}/scan/", {"code": "NOT-A-STEP", "csrfmiddlewaretoken": token}
    )
    assert plain.status_code == 422
    body = plain.content.decode()
    assert "<html" in body and "is not the code of a step of batch" in body
