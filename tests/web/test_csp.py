"""The Content-Security-Policy: every page says where its scripts, styles and forms may come from and go.

Every browser test fails on a violation Chromium reports (the ``page``
fixture in tests/conftest.py); these tests hold the header itself and that no
template carries the inline script or style the policy refuses.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

SRC = Path(__file__).resolve().parents[2] / "src" / "batchline"


@pytest.mark.req("P11-12")
def test_every_page_is_served_with_a_strict_policy(personas, login) -> None:
    for url, who in (("/login/", None), ("/", "operator"), ("/configuration/", "admin")):
        response = (login(personas[who]) if who else Client()).get(url)
        policy = response["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
        assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'", policy
        assert directives["style-src"] == "'self'" and directives["object-src"] == "'none'"
        assert directives["frame-ancestors"] == "'none'" and directives["form-action"] == "'self'"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_no_template_has_an_inline_script_style_or_handler() -> None:
    found = []
    for path in SRC.rglob("templates/**/*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)", r"<style", r"\sstyle=", r"\son[a-z]+=", r"javascript:"):
            if re.search(pattern, text):
                found.append(f"{path.relative_to(SRC)}: {pattern}")
    assert not found, found
    base = (SRC / "web" / "templates" / "web" / "base.html").read_text()
    assert '"includeIndicatorStyles":false' in base  # htmx would inject a <style> element otherwise
