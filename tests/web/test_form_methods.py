"""No password or other secret ever travels in a URL: every form that carries one is sent by POST.

The reproduction of issue 10: escalating an exception to a new deviation from
the review page sent its form as a GET, so the signer's password landed in the
URL and the server log (``GET /deviations/new/?...&signer_password=...``).
The walk below renders every page the demo users reach by following links,
parses each form, and fails on any form holding a password field (or any
other secret) that is not ``method="post"``, or that a submit button could
send by GET (``formmethod``).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client

from batchline.accounts.models import User
from batchline.execution.models import BatchException
from batchline.web.management.commands.demo import seed
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

SECRET_NAMES = re.compile(r"password|secret|token|pin\b", re.I)
# Links that are files, leave the session, or are the API's (no forms there).
SKIP = re.compile(r"^/(logout|api/|admin/|static/)|\.(pdf|csv|zpl|json|xml)$|/record/(pdf|json|batchml)/$")


class Forms(HTMLParser):
    """Each form with its method, its secret fields and the methods its submit buttons override."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[str] = []
        self._open: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            form = {
                "method": a.get("method", "get").lower(),
                "action": a.get("action", ""),
                "secrets": [],
                "overrides": [],
            }
            self.forms.append(form)
            self._open.append(form)
        if not self._open:
            return
        form = self._open[-1]
        # A password field, or any field named as a secret (the CSRF token included: in a URL it leaks too).
        if tag == "input" and (
            a.get("type", "").lower() == "password" or SECRET_NAMES.search(a.get("name", ""))
        ):
            form["secrets"].append(a.get("name", "?"))
        if tag in ("button", "input") and "formmethod" in a:
            form["overrides"].append(a["formmethod"].lower())

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._open:
            self._open.pop()


def shape(path: str) -> str:
    """One page of each kind: /lots/12/ and /lots/13/ are the same form."""
    return re.sub(r"\d+", "N", path)


def walk(client: Client, start: str = "/", limit: int = 150) -> tuple[list[tuple[str, dict]], int]:
    seen: set[str] = set()
    queue, forms, pages = [start], [], 0
    while queue and pages < limit:
        url = queue.pop(0)
        key = shape(url)
        if key in seen:
            continue
        seen.add(key)
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        pages += 1
        parser = Forms()
        parser.feed(response.content.decode())
        forms.extend((url, f) for f in parser.forms)
        for href in parser.links:
            target = urljoin(url, href)
            parts = urlsplit(target)
            if parts.netloc or not parts.path.startswith("/") or SKIP.search(parts.path):
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return forms, pages


def offending(forms: list[tuple[str, dict]]) -> list[str]:
    return [
        f"{url}: form to {f['action'] or url} ({', '.join(f['secrets'])}) is sent by "
        f"{'/'.join(sorted({f['method'], *f['overrides']} - {'post'})).upper()}"
        for url, f in forms
        if f["secrets"] and (f["method"] != "post" or any(m != "post" for m in f["overrides"]))
    ]


@pytest.mark.req("P11-21", "P11-04")
def test_every_form_with_a_password_on_every_page_of_the_demo_is_sent_by_post() -> None:
    logins = seed()
    checked, pages_total = 0, 0
    anonymous = Client()
    forms, pages = walk(anonymous, "/login/", limit=5)
    assert not offending(forms) and any(f["secrets"] for _, f in forms)  # the login form itself
    problems = offending(forms)
    for username, _name, _roles in logins:
        client = Client()
        client.force_login(User.objects.get(username=username))
        forms, pages = walk(client)
        problems += offending(forms)
        checked += sum(1 for _, f in forms if f["secrets"])
        pages_total += pages
    assert not problems, problems
    # The walk reached the signing forms (review, deviations, recipes, execution, users...).
    assert pages_total > 60 and checked > 20, (pages_total, checked)


@pytest.mark.req("P11-21")
def test_the_review_pages_raise_a_deviation_posts_and_never_echoes_the_password() -> None:
    seed()
    reviewer = Client()
    reviewer.force_login(User.objects.get(username="reviewer"))
    page = reviewer.get("/batches/IPC-0001/review/").content.decode()
    parser = Forms()
    parser.feed(page)
    (disposition,) = [f for f in parser.forms if f["action"].endswith("/review/disposition/")]
    assert "signer_password" in disposition["secrets"]
    assert disposition["overrides"] and set(disposition["overrides"]) == {"post"}
    assert 'formmethod="get"' not in page
    open_ids = list(
        BatchException.objects.filter(batch__number="IPC-0001", disposition__isnull=True).values_list(
            "pk", flat=True
        )
    )
    # What the browser sends when "Raise a deviation from these" is pressed with the dialog filled in.
    response = reviewer.post(
        "/deviations/new/",
        {"prefill": "1", "exception": open_ids[:1], "signer_password": "batchline-demo", "comment": "c"},
    )
    body = response.content.decode()
    assert response.status_code == 200 and 'data-testid="from-exceptions"' in body
    assert "batchline-demo" not in body
    from batchline.quality.models import Deviation

    assert not Deviation.objects.exists()  # prefilling raises nothing


def test_the_walk_fails_on_a_form_that_sends_a_password_by_get() -> None:
    """The check itself can fail: the old review page's button would be caught."""
    parser = Forms()
    parser.feed(
        '<form method="post" action="/d/"><input type="password" name="signer_password">'
        '<button formaction="/deviations/new/" formmethod="get">Raise</button></form>'
        '<form action="/x/"><input name="api_token"></form>'
    )
    found = offending([("/review/", f) for f in parser.forms])
    assert len(found) == 2 and "is sent by GET" in found[0]
    assert make_user and PASSWORD  # the shared helpers stay importable for the walk's variants
