"""vendor_feedback in the real Chromium: nothing runs, nothing leaves the machine, images show."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.guidelines import Guidelines
from workbench.project import Project
from workbench.sample import SAMPLE_DIR
from workbench.tags import TagStore

try:
    from ._browser import XSS
except ImportError:
    from _browser import XSS

pytestmark = pytest.mark.browser

GUIDELINE = ("A **4** has an open top. <script>window.__xss=2;alert(2)</script>"
             "<img src=x onerror=alert(1)> ![t](https://example.com/t.png)")


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)


def test_report_opens_offline_with_hostile_text_inert(page, sample_project, tmp_path):
    ann = sample_project.annotations.copy()
    ann["annotator"] = ann["annotator"].astype(str).replace({"dev": XSS})
    project = Project.from_frames(sample_project.items, annotations=ann,
                                  classes=sample_project.classes, root=SAMPLE_DIR,
                                  name="digits")
    with TagStore("sqlite://", item_ids=project.items["item_id"]) as store:
        Guidelines(project, store=store).revise((4, 9), GUIDELINE, author="lead")
        path = wb.vendor_feedback(project, "quicklabel", tmp_path / "quicklabel.html",
                                  store=store)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    page.wait_for_timeout(300)
    assert page.title() == "Labeling feedback for quicklabel"
    assert page.evaluate("window.__xss") is None and page.dialogs == []
    assert page.requests[0] == path.as_uri()  # the listener sees the page's requests
    offsite = [u for u in page.requests if not u.startswith(("file://", "data:"))]
    assert offsite == []
    images = page.eval_on_selector_all(".ex img", "els => els.map(e => e.naturalWidth)")
    assert len(images) >= 4 and all(w > 0 for w in images)  # data: URIs allowed by the CSP
    body = page.inner_text("body")
    assert XSS in body  # the hostile annotator name shows as text
    assert "<script>window.__xss=2;alert(2)</script>" in body  # the guideline too
    assert page.locator("#trend circle").count() == 6
    assert "northstar" not in body
