"""Measuring a page as a tablet shows it, and keeping what Chromium saw (issue 11).

Screenshots go to ``$BATCHLINE_ARTEFACTS`` (default ``test-artefacts/`` in the
repository, git-ignored) so that a CI run can keep them: one PNG per screen,
viewport and person, named after the test.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

PORTRAIT, LANDSCAPE = {"width": 768, "height": 1024}, {"width": 1280, "height": 800}
VIEWPORTS = {"portrait": PORTRAIT, "landscape": LANDSCAPE}
MIN_TARGET = 48  # px: a gloved finger (WCAG 2.5.5 asks 44)


def artefacts() -> Path:
    root = os.environ.get("BATCHLINE_ARTEFACTS") or str(
        Path(__file__).resolve().parents[2] / "test-artefacts"
    )
    path = Path(root) / "screens"
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_screenshot(page: Any, name: str) -> Path:
    """The viewport as the person sees it, kept as a test artefact."""
    path = artefacts() / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
    # caret="initial": hiding the caret injects a <style> element, which the page's CSP refuses.
    page.screenshot(path=str(path), caret="initial")
    return path


# Every control a finger can reach on the page (in view or scrolled to), with its size: a
# checkbox's target is its label; controls inside a closed <details> or <dialog> are not shown.
_MEASURE = """() => {
  const seen = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const targets = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')]
    .filter(seen)
    .map(e => {
      const box = (e.type === 'checkbox' || e.type === 'radio') && e.closest('label') ? e.closest('label') : e;
      const r = box.getBoundingClientRect();
      return {what: e.tagName.toLowerCase() + ' ' + (e.innerText || e.value || e.name || e.id || '').trim().slice(0, 40),
              width: Math.round(r.width), height: Math.round(r.height)};
    });
  const current = document.querySelector('[data-testid=current-step]');
  const title = current && current.querySelector('h2');
  const links = [...document.querySelectorAll('header nav a')].filter(seen);
  return {
    scroll_width: document.documentElement.scrollWidth,
    viewport_width: document.documentElement.clientWidth,
    viewport_height: window.innerHeight,
    scroll_y: window.scrollY,
    targets: targets,
    current_top: current ? current.getBoundingClientRect().top : null,
    current_title_bottom: title ? title.getBoundingClientRect().bottom : null,
    menu_rows: new Set(links.map(a => Math.round(a.getBoundingClientRect().top))).size,
    menu_overflows: (() => { const n = document.querySelector('header nav'); return n ? n.scrollWidth > n.clientWidth : false; })(),
  };
}"""


def measure(page: Any) -> dict[str, Any]:
    return page.evaluate(_MEASURE)


def small_targets(layout: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in layout["targets"] if t["height"] < MIN_TARGET or t["width"] < MIN_TARGET]
