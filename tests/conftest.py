"""Shared fixtures: named personas, logged-in clients, the live server and Chromium.

Services that tests need (PostgreSQL when DATABASE_URL names it, Chromium)
make a test fail, not skip, when CI=true.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from batchline.accounts import grants
from batchline.accounts.enrolment import void_open_credentials
from batchline.accounts.models import User
from batchline.accounts.services import user_create
from batchline.audit.db import triggers_drop, triggers_install
from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, record_update

CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct-horse-battery-7"
SETUP = Actor(id=None, username="test-setup", name="Test set-up", via="cli")

PERSONAS: dict[str, list[str]] = {
    "operator": ["operator"],
    "operator2": ["operator"],
    "supervisor": ["supervisor"],
    "qa_reviewer": ["qa_reviewer"],
    "qa_approver": ["qa_approver"],
    "admin": ["administrator"],
    "admin2": ["administrator"],
    "auditor": ["auditor"],
    "outsider": [],
}


def pytest_configure(config: pytest.Config) -> None:
    # Sync Playwright runs an event loop in this thread; Django's ORM would
    # otherwise refuse to run next to it.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        # Under pytest-xdist the workers share $BATCHLINE_HOME's installation key, which is made on
        # first use: made here, once, before they start, so two workers' first signatures never
        # both make it (one would find the other's half-written file, or sign with a replaced key).
        from batchline import keys

        keys.installation_key()


def make_user(
    username: str, roles: list[str] | None = None, *, ready_to_sign: bool = True, **extra: Any
) -> User:
    """A persona with a known password; ``ready_to_sign`` as if they had changed it and acknowledged.

    The roles are set directly, as test set-up: the product grants GMP signing
    roles only through a QA approver's approval (tests/accounts/test_grants.py).
    """
    user, _ = user_create(
        actor=SETUP,
        username=username,
        full_name=extra.pop("full_name", username.replace("_", " ").title() + " Person"),
        email=extra.pop("email", ""),
    )
    roles = roles if roles is not None else PERSONAS.get(username, [])
    with transaction.atomic():
        if roles:
            grants.set_groups(user, sorted(roles))
            record_update(
                user,
                actor=SETUP,
                values={"is_staff": grants.admin_site_access(roles)},
                extra_before={"roles": []},
                action="test_setup",
            )
        values: dict[str, Any] = {
            "must_change_password": not ready_to_sign,
            "password": make_password(PASSWORD),
        }
        if ready_to_sign:
            values |= {"password_changed_at": timezone.now(), "esig_acknowledged_at": timezone.now()}
        void_open_credentials(user, actor=SETUP, reason="test set-up: a known password")
        record_update(user, actor=SETUP, values=values, action="test_setup")
    return user


@pytest.fixture(autouse=True)
def fresh_process_caches() -> Iterator[None]:
    """Each test starts with empty per-process caches, as a newly started server would.

    A test's rows are rolled back and their ids used again by the next test,
    which a running server never sees (ids only grow), so a screen cached or a
    permission named in one test must not meet the next.
    """
    from django.core.cache import caches

    from batchline.accounts import backends

    caches["screens"].clear()
    backends.forget_permission_names()
    yield


@pytest.fixture(autouse=True)
def own_anchor(tmp_path: Any, settings: Any) -> Iterator[Any]:
    """Each test's checkpoints go to its own anchor file and its own key, as its database is its own.

    Otherwise the anchor would keep the checkpoints of earlier tests (and runs),
    whose database is gone: exactly what a restored older database looks like.
    """
    settings.BATCHLINE_ANCHOR_PATH = str(tmp_path / "anchor" / "checkpoints.jsonl")
    settings.BATCHLINE_ANCHOR_NATS_URL = ""
    settings.BATCHLINE_ANCHOR_SYSLOG = ""
    yield tmp_path / "anchor" / "checkpoints.jsonl"


@pytest.fixture
def personas(db: None) -> dict[str, User]:
    return {name: make_user(name) for name in PERSONAS}


@pytest.fixture
def login(client: Client) -> Callable[[User], Client]:
    """Log a persona in through the real login page (axes, audit and all)."""

    def _login(user: User, c: Client | None = None) -> Client:
        c = c or Client()
        response = c.post("/login/", {"username": user.username, "password": PASSWORD})
        assert response.status_code == 302, response.content[:500]
        return c

    return _login


def lockout_failures() -> int:
    """The lockout threshold of the GMP configuration in force."""
    from batchline.configuration.selectors import current

    return current().lockout_failures


def configure(**values: Any) -> None:
    """Test set-up: a new GMP configuration version in force (the product writes one only on approval)."""
    from batchline.configuration.services import configuration_version_create

    with transaction.atomic():
        configuration_version_create(actor=SETUP, values=values, reason="test set-up")


def entries(**filters: Any) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


def appends_at_the_end(statements: list[dict[str, Any]]) -> list[str]:
    """The statements that appended audit entries, checked to come after every other write, together.

    On PostgreSQL they are one call (the chain's lock is then held from it to
    the commit); on SQLite the chain's head is read and the entries inserted.
    """
    sqls = [q["sql"] for q in statements]
    is_audit = [("audit_auditentry" in s or "batchline_audit_append" in s) for s in sqls]
    audit = [i for i, a in enumerate(is_audit) if a]
    writes = [
        i
        for i, s in enumerate(sqls)
        if not is_audit[i] and s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert audit, sqls
    assert audit == list(range(audit[0], audit[-1] + 1)), sqls  # one run of statements
    assert not writes or audit[0] > writes[-1], sqls  # after the last change they record
    if connection.vendor == "postgresql":
        assert len(audit) == 1 and "batchline_audit_append" in sqls[audit[0]], sqls
    return [sqls[i] for i in audit]


@pytest.fixture
def no_triggers(db: None) -> Iterator[None]:
    """Play the attacker with database rights: drop the append-only triggers.

    Inside the test's transaction, so the drop is rolled back with it.
    """
    triggers_drop(connection)
    yield


@pytest.fixture
def live_db(transactional_db: None) -> Iterator[None]:
    """For tests that need committed data (live server, concurrency).

    The flush after a transactional test deletes every row, which the
    append-only triggers rightly refuse; they are removed just for that
    tear-down and put back before the next such test.
    """
    triggers_install(connection)
    yield
    triggers_drop(connection)


@pytest.fixture
def postgresql_only(db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL behaviour; .ci/run runs the suite on PostgreSQL too")


def run_async(coroutine: Any) -> Any:
    """``asyncio.run`` on a thread of its own: the suite's main thread may hold a running loop
    (sync Playwright's, once a browser test ran), where ``asyncio.run`` refuses to start."""
    import asyncio
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="run-async")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def free_port() -> int:
    """A TCP port nobody listens on now, probed by binding it."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp(settings: Any) -> Iterator[list[Any]]:
    """A real SMTP server (aiosmtpd) as the mail relay; yields its inbox of received messages.

    Batchline is configured to use it as ``BATCHLINE_EMAIL_HOST`` would: the
    SMTP backend, this host and port, and the relay counted as configured.
    """
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    inbox: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.content, policy=policy.default)
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            inbox.append(message)
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.BATCHLINE_MAIL_RELAY = True
    try:
        yield inbox
    finally:
        controller.stop()


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        message = "Chromium is missing: apt-get install chromium (./dev test does this when run as root)"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, live_server: Any, live_db: None) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    # Every browser test also holds the Content-Security-Policy: a page that needs an inline script or
    # style, or loads from elsewhere, makes Chromium say "Content Security Policy" in its console.
    violations: list[str] = []
    pg.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    yield pg
    context.close()
    assert not violations, violations


@pytest.fixture
def sim() -> Iterator[Any]:
    """An MT-SICS scale simulator on a free local port (settles in 20 ms), for the weighing tests."""
    from batchline.devices.scale_sim import ScaleSimulator

    scale = ScaleSimulator(
        serial="SIM-0042", capacity=6200, unit="g", decimals=1, settle_time=0.02, stable_timeout=0.5
    )
    with scale.running() as running:
        yield running
