"""Every form of every page answers bad input with a 4xx in words and writes nothing (A11-05, issue 11).

The walk logs in as each demo user, follows every link, and collects every
form a page offers (its action, its fields and their values). Each form is
then sent as it is but with bad input: every field 100,000 characters long,
every field with a control character, every field a number no record holds
(1e400, NaN, Infinity, -0, thirty digits, 1,500; three of them for each
field), every field twice (a list where one value is expected), hidden
fields tampered with, and nothing at all. The signing fields keep the person's own password: the point is the
other input, not a lockout. Whatever the input, the answer is never a server
error; a refusal (4xx) writes nothing but the record of a refused attempt
where GMP asks for one. A second round walks the pages again, since
what a round's accepted posts did (a step started, a batch held) shows new
forms. Every URL pattern of the pages that takes a POST must have been
reached by a form (or be named below with why not), so a page added later is
walked without editing this test.
"""

from __future__ import annotations

import inspect
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from batchline.accounts.models import User
from batchline.audit.models import AuditEntry
from batchline.audit.services import SYSTEM, Actor, record_update
from batchline.signatures.services import signer_authenticate
from batchline.web.management.commands.demo import DEMO_PASSWORD, seed
from batchline.web.middleware import DOCUMENT_FIELDS
from tests.api.test_fuzz import written_since
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SKIP = re.compile(r"^/(logout|api/|admin/|static/)|\.(pdf|csv|zpl|json|xml)$|/record/(pdf|json|batchml)/$")
BAD_NUMBERS = ["1e400", "NaN", "-Infinity", "-0", "9" * 30, "1,500"]
SECRET = re.compile(r"password|csrfmiddlewaretoken")

# Routes that take a POST but no page offers as a form, and why.
NOT_A_FORM = {
    "logout/": "leaves the session; sent without input",
    "login/": "the login form is walked anonymously in test_form_methods; its input is a password",
    "enrol/": "redeemed with a code that only the person holds (tests/accounts)",
    "containers/<slug:code>/label.<str:fmt>": "a label print; fuzzed below by its route",
    "batches/<str:number>/steps/<str:key>/<str:action>/": "its forms show only on a running step; fuzzed by route",
    "batches/<slug:number>/containers/<slug:code>/label.pdf": "a dispensed container's label; fuzzed by route",
    "batches/<str:number>/steps/<str:key>/record/<str:action>/": (
        "its forms show only on a running sampling, output or labelling step; fuzzed by route"
    ),
    "batches/<str:number>/samples/<str:code>/label.pdf": "a sample's label, once taken; fuzzed by route",
    "batches/<str:number>/output/<str:code>/label.pdf": "an output container's label, once made; fuzzed by route",
    "batches/<str:number>/returned/<slug:code>/label.pdf": "a returned container's label; fuzzed by route",
    "batches/<str:number>/remainders/<slug:code>/<str:action>/": (
        "shows only while a container weighed out for the batch holds material; fuzzed by route"
    ),
    "scales/simulator/": "on the booth of a running weighing only; fuzzed by route",
    "master-data/imports/<id:pk>/<str:decision>/": (
        "shows only while an imported file waits for a QA approver (tests/masterdata/test_import_page.py); "
        "fuzzed by route"
    ),
    "master-data/gateway-changes/<id:pk>/<str:decision>/": (
        "shows only while a gateway tag or endpoint request waits for a QA approver "
        "(tests/gateway/test_configuration.py); fuzzed by route"
    ),
}


class Forms(HTMLParser):
    """Every form of a page: where it posts and each field with the value the page gives it."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[str] = []
        self._form: dict | None = None
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            self._form = {
                "method": a.get("method", "get").lower(),
                "action": a.get("action") or a.get("hx-post") or "",
                "fields": [],
            }
            self.forms.append(self._form)
            return
        if self._form is None or not a.get("name"):
            return
        name, kind = a["name"], a.get("type", "text").lower()
        if tag == "input":
            if kind in ("checkbox", "radio") and "checked" not in a:
                if kind == "radio" and not any(f[0] == name for f in self._form["fields"]):
                    self._form["fields"].append((name, kind, a.get("value", "on")))
                return
            if kind not in ("submit", "button", "file", "image", "reset"):
                self._form["fields"].append((name, kind, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "button" and a.get("value") and not any(f[0] == name for f in self._form["fields"]):
            self._form["fields"].append((name, "button", a["value"]))
        elif tag == "textarea":
            self._textarea = name
            self._form["fields"].append((name, "textarea", ""))
        elif tag == "select":
            self._select = name
            self._form["fields"].append((name, "select", ""))
        elif tag == "option" and self._select:
            fields = self._form["fields"]
            if fields[-1][0] == self._select and (not fields[-1][2] or "selected" in a):
                fields[-1] = (self._select, "select", a.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._form is not None and self._textarea:
            name, kind, value = self._form["fields"][-1]
            self._form["fields"][-1] = (name, kind, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def shape(url: str) -> str:
    """One page of each kind: /lots/12/ and /lots/13/ are the same forms, and so are a batch's steps,
    and so are two materials' pages (their codes hold letters: /master-data/material/PCM-API/)."""
    path = re.sub(r"^/master-data/(?!changes/)([^/]+)/.+/$", r"/master-data/\1/ITEM/", url.split("?")[0])
    return re.sub(r"\d+", "N", path)


def walk(client: Client, limit: int = 250) -> list[tuple[str, dict]]:
    """Every POST form on the pages ``client`` reaches by following links, one of each kind."""
    seen: set[str] = set()
    queue, forms, pages = ["/", "/users/role-requests/", "/security/", "/tokens/", "/deviations/"], [], 0
    while queue and pages < limit:
        url = queue.pop(0)
        if shape(url) in seen:
            continue
        seen.add(shape(url))
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        pages += 1
        parser = Forms()
        parser.feed(response.content.decode())
        for form in parser.forms:
            if form["method"] == "post":
                form["action"] = urlsplit(urljoin(url, form["action"] or url)).path
                if not SKIP.search(form["action"]):
                    forms.append((url, form))
        for href in parser.links:
            parts = urlsplit(urljoin(url, href))
            if not parts.netloc and parts.path.startswith("/") and not SKIP.search(parts.path):
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return forms


def variants(form: dict, username: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The bad inputs one form is sent with: (what, the fields as posted)."""

    def keep(name: str, kind: str, value: str) -> str:
        if name == "signer_password" or "password" in name:
            return PASSWORD if username == "newcomer" else DEMO_PASSWORD
        if name == "signer_username":
            return username
        return value

    base = [(n, keep(n, k, v)) for n, k, v in form["fields"]]
    typed = {n for n, k, _ in form["fields"] if k not in ("hidden",) and not SECRET.search(n)}
    hidden = {n for n, k, _ in form["fields"] if k == "hidden" and not SECRET.search(n)}
    everything = typed | hidden | {n for n, k, _ in form["fields"] if k == "button"}
    out = [
        ("100,000 characters", [(n, "7" * 100_000 if n in everything else v) for n, v in base]),
        ("a control character", [(n, v + "\x1b[2J" if n in everything else v) for n, v in base]),
        ("a list where one value is expected", [*base, *[(n, "x") for n, _ in base if n in everything]]),
        ("nothing", [(n, v) for n, v in base if SECRET.search(n)]),
        ("hidden fields tampered with", [(n, "1e400" if n in hidden else v) for n, v in base]),
    ]
    # Each typed field a number no record holds, a different one per field, rotated over three posts.
    names = sorted(typed)
    for turn in range(3):
        bad = {n: BAD_NUMBERS[(i + 2 * turn) % len(BAD_NUMBERS)] for i, n in enumerate(names)}
        out.append((f"bad numbers ({turn + 1})", [(n, bad.get(n, v)) for n, v in base]))
    return out


def post(client: Client, action: str, fields: list[tuple[str, str]]) -> tuple[int, str]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    mark = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = client.post(action, data)
    body = response.content.decode(errors="replace")
    if 400 <= response.status_code < 500:
        leaked = written_since(mark)
        assert not leaked, (action, response.status_code, body[:300], leaked)
    return response.status_code, body


def forms_the_demo_lacks() -> None:
    """State the demo does not hold, so that every form of the pages shows somewhere: a configuration
    change, a master-data request, a gateway tag request, a role and a deviation waiting for their next step, an API token, a blocked station,
    a validation package waiting for its lead, a person who has not yet acknowledged their electronic signature,
    and an outbox message that failed for good (its retry form)."""
    from batchline.accounts.services import token_create, user_create
    from batchline.configuration.services import configuration_change_request
    from batchline.gateway.services import tag_create_request
    from batchline.masterdata.services import master_create
    from batchline.quality.services import deviation_raise
    from tests.conftest import make_user
    from tests.signatures.test_signing import station

    def signer(user: User, meaning: str):
        return signer_authenticate(
            request=station(user), username=user.username, password=DEMO_PASSWORD, meaning=meaning
        )

    admin, reviewer, operator = (User.objects.get(username=n) for n in ("admin", "reviewer", "operator"))
    configuration_change_request(
        actor=Actor.of(admin, via="web"),
        signer=signer(admin, "requested"),
        values={"late_entry_minutes": 30},
        reason="the walk needs a waiting request",
    )
    deviation_raise(
        actor=Actor.of(reviewer, via="web"),
        signer=signer(reviewer, "performed"),
        title="Granulator stopped",
        classification="major",
        description="It tripped.",
        batches=["PCM-0001"],
    )
    token_create(actor=Actor.of(operator, via="web"), user=operator, name="walk", scope="read")
    master_create(  # a new product waiting for a QA approver
        actor=Actor.of(admin, via="web"),
        signer=signer(admin, "requested"),
        kind="product",
        values={"code": "WALK-1", "name": "Walked"},
        reason="the walk needs a waiting master-data request",
    )
    user_create(  # a GMP role requested, waiting for a QA approver
        actor=Actor.of(admin, via="web"),
        signer=signer(admin, "requested"),
        username="nina",
        full_name="Nina Newcomer",
        roles=["operator"],
        reason="hired",
    )
    tag_create_request(  # a gateway tag waiting for a QA approver: its Withdraw form on the gateway page
        actor=Actor.of(admin, via="web"),
        signer=signer(admin, "requested"),
        endpoint="sim-opcua",
        equipment="FBD-01",
        tag="ns=2;s=Walked",
        name="walked",
        reason="the walk needs a waiting gateway request",
    )
    for attempt in range(12):  # one address guessing many accounts: the station is blocked
        Client(REMOTE_ADDR="10.9.9.9").post("/login/", {"username": f"nobody{attempt}", "password": "x"})
    newcomer = make_user("newcomer", ["operator"])
    with transaction.atomic():
        record_update(newcomer, actor=SYSTEM, values={"esig_acknowledged_at": None}, action="test_setup")
    validation_package_waiting()
    outbox_message_failed()


def outbox_message_failed() -> None:
    """As the deliverer leaves a message whose every attempt failed (tests/outbox)."""
    from django.utils import timezone

    from batchline.outbox.models import Message

    now = timezone.now()
    Message.objects.create(
        destination="erp",
        stream="batch:PCM-0001",
        kind="batch.started",
        key="walk:erp:1",
        content_type="application/json",
        body="{}",
        created_at=now,
        next_attempt_at=now,
        state=Message.State.FAILED,
        attempts=12,
    )


def validation_package_waiting() -> None:
    """A package as ``batchline validate`` registers it, judged against no tests at all."""
    from django.conf import settings

    from batchline.validation import package, risk, urs
    from batchline.validation.services import package_register
    from batchline.validation.trace import trace

    matrix = trace(urs.requirements(), risk.assessment(), [])
    content = package.document(iq=[], oq={"tests": []}, trace=matrix, project={"version": "walk"})
    built = package.build(content, out_dir=settings.HOME / "validation-walk")
    package_register(built, engine="walk", actor=SYSTEM)


def post_routes() -> dict[str, str]:
    """Every URL pattern of the pages whose view reads a POST, with a URL that matches it."""

    def flat(patterns: list, prefix: str = "") -> list[tuple[str, object]]:
        out = []
        for p in patterns:
            if isinstance(p, URLResolver):
                out += flat(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                out.append((prefix + str(p.pattern), p.callback))
        return out

    routes = {}
    for route, callback in flat(get_resolver().url_patterns):
        if re.match(r"^(api/|admin/|static/)", route):
            continue
        view = getattr(callback, "view_class", None) or inspect.unwrap(callback)  # type: ignore[arg-type]
        if "POST" in inspect.getsource(view) or "def post" in inspect.getsource(view):
            routes[route] = "/" + re.sub(r"<[^>]+>", "1", route)
    return routes


@pytest.mark.req("A11-05", "DI-05", "P11-06")
def test_every_form_of_every_page_answers_bad_input_with_a_4xx_in_words_and_writes_nothing() -> None:
    logins = seed()
    forms_the_demo_lacks()
    clients = {}
    for username in [name for name, _, _ in logins] + ["newcomer"]:
        clients[username] = Client(raise_request_exception=False)  # every server error listed, not the first
        clients[username].force_login(User.objects.get(username=username))
    sent: set[tuple[str, tuple[str, ...]]] = set()
    reached: set[str] = set()
    server_errors, not_refused_at_the_door = [], []
    for _round in range(2):
        # Every page of every person first, then the posts: one person's accepted post (a role
        # request decided, a user deactivated) must not hide a form from the next.
        found = []
        for username, client in clients.items():
            for page, form in walk(client):
                # One of each kind of form, sent by the first person whose page offers it.
                key = (shape(form["action"]), tuple(sorted({n for n, _, _ in form["fields"]})))
                if key not in sent:
                    sent.add(key)
                    found.append((username, page, form))
        for username, page, form in found:
            route = str(resolve(form["action"]).route)
            reached.add(route)
            documents = DOCUMENT_FIELDS.get(route, frozenset())
            for what, fields in variants(form, username):
                status, body = post(clients[username], form["action"], fields)
                if status >= 500:
                    server_errors.append(f"{username} {form['action']} (from {page}) with {what}: {status}")
                elif (
                    what in ("100,000 characters", "a control character")
                    and any(n for n, _ in fields if not SECRET.search(n) and n not in documents)
                    and (status not in (400, 413) or "Nothing was changed" not in body)
                ):
                    not_refused_at_the_door.append(f"{form['action']} with {what}: {status}")
        if not found:
            break
    assert not server_errors, server_errors
    assert not not_refused_at_the_door, not_refused_at_the_door
    # Every page route that takes a POST was reached by a form, or is named with why not.
    unreached = set(post_routes()) - reached - set(NOT_A_FORM)
    assert not unreached, f"POST routes no form reached (walk them or name them in NOT_A_FORM): {unreached}"
    assert len(reached) > 25, sorted(reached)


@pytest.mark.req("A11-05", "DI-05")
@pytest.mark.parametrize("route", sorted(NOT_A_FORM))
def test_the_routes_no_form_reaches_answer_bad_input_without_a_server_error(route: str) -> None:
    seed()
    client = Client()
    client.force_login(User.objects.get(username="operator"))
    fills = {
        "number": "PCM-0001",
        "key": "dispense_api",
        "code": "C-000001",
        "fmt": "pdf",
        "action": "dispense",
    }
    # The step actions besides a weighing: an input's reading taken or typed with a witness, a correction.
    actions = ["dispense", "reading", "reading_manual", "correct"] if "<str:action>" in route else [None]
    for action in actions:
        filled = {**fills, "action": action or fills["action"]}
        url = "/" + re.sub(r"<[^:>]+:([^>]+)>", lambda m, f=filled: f.get(m.group(1), "1"), route)
        for what in ["7" * 100_000, "C-000001\x1b", *BAD_NUMBERS]:
            fields = [
                (n, what)
                for n in (
                    "source",
                    "scale",
                    "manual_weight",
                    "manual_unit",
                    "reason",
                    "code",
                    "username",
                    "name",
                    "text",
                )
            ]
            # The witness signs as themselves, like the performer: the point is the other input.
            witness = [("witness_username", "supervisor"), ("witness_password", DEMO_PASSWORD)]
            sent = [*fields, ("signer_password", DEMO_PASSWORD), *witness]
            status, _ = post(client, url, sent)
            assert status < 500, (url, what[:20], status)
