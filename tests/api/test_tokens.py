"""API tokens: every token expires, has a scope and is throttled; owners and administrators see and revoke them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone

from batchline.accounts import services
from batchline.accounts.models import ApiToken
from batchline.audit.services import Actor, record_update
from tests.conftest import PASSWORD, SETUP

pytestmark = pytest.mark.django_db


def call(raw: str, method: str, path: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {raw}"}}
    if body is not None:
        kwargs |= {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(Client(), method)(f"/api/v1{path}", **kwargs)


def make(user: Any, **kwargs: Any) -> tuple[ApiToken, str]:
    return services.token_create(actor=Actor.of(user, via="web"), user=user, name="script", **kwargs)


@pytest.mark.req("P11-25", "P11-04")
def test_a_token_expires_after_90_days_by_default(personas) -> None:
    token, raw = make(personas["operator"])
    assert dt.timedelta(days=89) < token.expires_at - timezone.now() <= dt.timedelta(days=90)
    assert call(raw, "get", "/me").status_code == 200
    with transaction.atomic():
        record_update(token, actor=SETUP, values={"expires_at": timezone.now() - dt.timedelta(seconds=1)})
    assert call(raw, "get", "/me").status_code == 401


def test_a_token_made_before_expiry_was_mandatory_expires_90_days_after_it_was_made(personas) -> None:
    token, raw = make(personas["operator"])
    with transaction.atomic():
        record_update(
            token,
            actor=SETUP,
            values={"expires_at": None, "created_at": timezone.now() - dt.timedelta(days=91)},
        )
    assert call(raw, "get", "/me").status_code == 401


def test_a_token_lives_a_year_at_most(personas) -> None:
    with pytest.raises(services.AccountError, match="365 days at most"):
        make(personas["operator"], expires_at=timezone.now() + dt.timedelta(days=366))


@pytest.mark.req("P11-07")
def test_a_read_only_token_reads_and_is_refused_on_any_write(personas) -> None:
    admin = personas["admin"]
    _, raw = make(admin)  # read only by default
    assert call(raw, "get", "/users").status_code == 200
    response = call(raw, "post", f"/users/{personas['operator'].pk}/deactivate", {"reason": "x"})
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    personas["operator"].refresh_from_db()
    assert personas["operator"].is_active
    _, writer = make(admin, scope="write")
    assert (
        call(writer, "post", f"/users/{personas['operator'].pk}/deactivate", {"reason": "x"}).status_code
        == 200
    )


def test_tokens_are_throttled_per_token(personas, settings) -> None:
    settings.BATCHLINE_API_TOKEN_RATE = "3/m"
    cache.clear()
    _, raw = make(personas["operator"])
    assert [call(raw, "get", "/me").status_code for _ in range(4)] == [200, 200, 200, 429]
    _, other = make(personas["operator"])
    assert call(other, "get", "/me").status_code == 200  # another token has its own count
    cache.clear()


def test_an_administrator_sees_and_revokes_someone_elses_token(personas, login) -> None:
    token, raw = make(personas["operator"])
    _, admin_raw = make(personas["admin"])
    listed = call(admin_raw, "get", f"/users/{personas['operator'].pk}/tokens").json()
    assert [(t["name"], t["scope"]) for t in listed] == [("script", "read")]
    c = login(personas["admin"])
    page = c.get(f"/users/{personas['operator'].pk}/").content.decode()
    assert "script" in page and "Read only" in page
    response = c.post(f"/tokens/{token.pk}/revoke/", {"reason": "left the company"})
    assert response.status_code == 302
    assert call(raw, "get", "/me").status_code == 401
    # The owner sees it on their own page.
    page = login(personas["operator"]).get("/tokens/").content.decode()
    assert "revoked" in page and PASSWORD not in page


def test_nobody_else_revokes_a_token(personas) -> None:
    token, _ = make(personas["operator"])
    _, raw = make(personas["supervisor"], scope="write")
    assert call(raw, "post", f"/tokens/{token.pk}/revoke").status_code == 403
