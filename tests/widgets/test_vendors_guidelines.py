"""VendorsAndGuidelines (dashboard 04) without a browser: scorecard clicks, guideline panel,
sanitised guideline HTML, history, effect, revisions with picked examples, read-only refusal."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser

import pandas as pd
import pytest

import workbench as wb
from workbench.guidelines import Guidelines
from workbench.selection import Selection
from workbench.widgets.guideline_panel import GuidelinePanel
from workbench.widgets.scorecard_table import ScorecardTable, scorecard_items
from workbench.widgets.vendors_guidelines import VendorsAndGuidelines

EVIL = ("A **7** has a bar. <script>window.__xss=1</script> "
        '<img src=x onerror="window.__xss=2">')


@pytest.fixture(autouse=True)
def _session(monkeypatch):
    monkeypatch.setenv("WORKBENCH_USER", "server-side-user")
    monkeypatch.delenv("WORKBENCH_ROLE", raising=False)
    monkeypatch.delenv("WORKBENCH_DB_URL", raising=False)
    monkeypatch.delenv("WORKBENCH_USER_HEADER", raising=False)


@pytest.fixture
def root(sample_root, tmp_path):
    """A writable copy of the sample project (its own store)."""
    out = tmp_path / "sample"
    shutil.copytree(sample_root, out, ignore=shutil.ignore_patterns(".workbench"))
    return out


def _fix_cho_from(root, batch: str) -> None:
    """cho stops confusing 1 and 7 from ``batch`` on (the truth replaces her labels)."""
    truth = pd.read_csv(root / "truth.csv", dtype=str).set_index("item_id")["true_label"]
    items = pd.read_csv(root / "items.csv", dtype=str).set_index("item_id")
    ann = pd.read_csv(root / "annotations.csv", dtype=str)
    sel = ((ann["item_id"].map(items["batch"]) >= batch) & (ann["annotator"] == "cho")
           & ann["item_id"].map(truth).isin(["1", "7"]))
    assert sel.sum() > 50
    ann.loc[sel, "label"] = ann.loc[sel, "item_id"].map(truth)
    ann.to_csv(root / "annotations.csv", index=False)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict]]:
    p = _Tags()
    p.feed(html)
    return p.tags


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _classes(widget) -> set:
    return {c for x in _walk(widget) for c in x._dom_classes}


def _pair_row(panel: GuidelinePanel, target: str) -> int:
    return int(panel.pairs.index[panel.pairs["target"] == target][0])


# ---------------------------------------------------------------- the board


def test_board_composes_the_parts_on_one_selection(root):
    project = wb.open_project(root)
    app = VendorsAndGuidelines(project)
    assert {"wb-ready", "wb-vendors-guidelines", "wb-scorecard", "wb-guideline-panel",
            "wb-gallery", "wb-tag-panel", "wb-status"} <= _classes(app)
    sel = app.selection
    assert app.scorecard.selection is sel and app.guidelines.selection is sel
    assert app.gallery.selection is sel and app.tag_panel.selection is sel
    assert "No selection" in app.status.value
    app.scorecard.rows.rows[0].button.click()
    assert sel.ids and "selected" in app.status.value


# ---------------------------------------------------------------- scorecard


def test_scorecard_row_click_selects_the_vendors_items_of_the_batch(root):
    project = wb.open_project(root)
    sel = Selection()
    table = ScorecardTable(project, sel)
    card = table.card
    assert len(card) and set(table.frame["level"]) == {"vendor"}
    row = table.frame.iloc[0]
    table.rows.rows[0].button.click()  # what the browser's click does
    items, ann = project.items.set_index("item_id"), project.annotations
    members = card[(card["level"] == "annotator") & (card["vendor"] == row["vendor"])]
    who = ann["annotator"].isin(members["annotator"])
    in_batch = ann["item_id"].map(items["batch"]) == row["batch"]
    expected = tuple(sorted(set(ann.loc[who & in_batch, "item_id"])))
    assert sel.ids == expected and len(expected) > 50
    assert sel.origin is table and row["vendor"] in sel.description
    assert table.rows.rows[0].button.button_style == "info"
    # an annotator row: that annotator's items of that batch, no one else's
    table.level_picker.value = "annotator"
    arow = table.frame.iloc[2]
    table.rows.rows[2].button.click()
    mine = (ann["annotator"] == arow["annotator"]) & (
        ann["item_id"].map(items["batch"]) == arow["batch"])
    assert sel.ids == tuple(sorted(set(ann.loc[mine, "item_id"])))
    assert len(sel.ids) == arow["n_labels"]  # one current label per item and annotator
    # another widget selecting drops the highlight
    sel.select(["digit-0001"], origin=object())
    assert all(r.button.button_style == "" for r in table.rows.rows)


def test_scorecard_flags_drops_in_red(root):
    project = wb.open_project(root)
    table = ScorecardTable(project)
    card = table.card
    assert card.attrs["flagged"]  # the sample's worse vendor
    flagged = table.frame.reset_index(drop=True)
    flagged = flagged.index[flagged["drop_flag"]].tolist()
    assert flagged
    i = flagged[0]
    table._go(i // table.rows.page_rows)
    cells = table.rows.rows[i % table.rows.page_rows].cells
    assert "wb-scorecard-drop" in cells[-1].value and "#b00020" in cells[-1].value
    assert all("#b00020" in c.value for c in cells)
    assert "dropped beyond chance" in table.summary.value
    unflagged = [k for k in range(min(len(table.frame), table.rows.page_rows))
                 if not table.frame.iloc[k]["drop_flag"]]
    table._go(0)
    assert "#b00020" not in table.rows.rows[unflagged[0]].cells[0].value


def test_scorecard_items_without_a_batch_column_and_without_a_vendor(root):
    project = wb.open_project(root)
    card = wb.vendor_scorecard(project, by=("vendor",))
    v = card.index[card["level"] == "vendor"][0]
    ids = scorecard_items(project, card, v)
    members = card.loc[(card["level"] == "annotator") & (card["vendor"] == card.loc[v, "vendor"]),
                       "annotator"]
    ann = project.annotations
    assert ids == sorted(set(ann.loc[ann["annotator"].isin(members), "item_id"]))
    items = project.items.drop(columns=["vendor"])
    bare = wb.Project.from_frames(items=items, annotations=ann, classes=project.classes)
    table = ScorecardTable(bare)  # no vendor column: says why instead of failing
    assert table.card.empty and "vendor" in table.summary.value
    assert all(r.layout.display == "none" for r in table.rows.rows)


# ---------------------------------------------------------------- guidelines


def test_pair_click_shows_sanitised_guideline_history_and_effect(root):
    project = wb.open_project(root)
    g = Guidelines(project)
    g.revise("1|7", "First version.", author="lead", reason="first")
    g.revise(("7", "1"), EVIL, author="<b>lee</b>", reason="<i>cho</i> mixes them",
             effective="2026-W04")
    sel = Selection()
    panel = GuidelinePanel(project, sel, n_boot=100)
    k = _pair_row(panel, "1|7")
    panel._go(k // panel.rows.page_rows)
    assert "revision 2" in panel.rows.rows[k % panel.rows.page_rows].cells[-1].value
    panel.rows.rows[k % panel.rows.page_rows].button.click()
    assert panel.target == "1|7"
    # the pair's items are selected (the gallery shows them, to pick examples)
    assert sel.ids == tuple(sorted(panel.pairs.iloc[k]["item_ids"])) and sel.origin is panel
    html = panel.html.value
    assert "<strong>7</strong>" in html  # Markdown rendered
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html  # hostile text as text
    assert "onerror" in html and "&lt;img" in html
    tags = _tags(html)
    assert not any(t in ("script", "img", "svg", "iframe") for t, _ in tags)
    assert not any(a.startswith("on") for _, attrs in tags for a in attrs)
    # history: newest first, every field escaped
    hist = panel.history_html.value
    assert hist.index("<td>2</td>") < hist.index("<td>1</td>")
    assert "&lt;b&gt;lee&lt;/b&gt;" in hist and "&lt;i&gt;cho&lt;/i&gt; mixes them" in hist
    assert "<b>lee</b>" not in hist and "batch 2026-W04" in hist
    # effect of the latest revision: unchanged labels, no significant change
    assert panel.effect is not None and panel.effect.attrs["revision_id"] == 2
    assert panel.effect.iloc[0]["verdict"] == "no significant change"
    assert "did not measurably help" in panel.effect_html.value
    assert "Effect of revision 2" in panel.effect_html.value
    # the editor starts from the current text
    assert panel.text_box.value == EVIL


def test_effect_verdict_shows_a_revision_that_helped(root):
    _fix_cho_from(root, "2026-W04")
    project = wb.open_project(root)
    Guidelines(project).revise("1|7", "A 7 has a bar.", author="lead", effective="2026-W04")
    panel = GuidelinePanel(project, n_boot=100)
    panel.select_pair(_pair_row(panel, "1|7"))
    assert panel.effect.iloc[0]["verdict"] == "helped"
    assert "The revision helped" in panel.effect_html.value
    assert "#1a7f37" in panel.effect_html.value
    cho = panel.effect.set_index("annotator").loc["cho"]
    assert f"{cho['confusion_before']:.1%}" in panel.effect_html.value


def test_revise_with_picked_examples_writes_a_revision(root):
    project = wb.open_project(root)
    sel = Selection()
    panel = GuidelinePanel(project, sel, n_boot=50)
    k = _pair_row(panel, "4|9")
    assert "none yet" in panel._content(k)[2][-1]
    panel.select_pair(k)
    assert "No guideline for this pair yet" in panel.html.value
    ids = list(sel.ids)
    panel.add_do_button.click()  # nothing picked: refused visibly
    assert "No card is picked" in panel.error_box.value and panel.examples == {}
    sel.picked = ids[:2]  # what the gallery's card clicks do
    assert panel.add_do_button.description == "add 2 picked as DO"
    panel.add_do_button.click()
    sel.picked = ids[2:3]
    panel.add_dont_button.click()
    assert panel.examples == {ids[0]: "do", ids[1]: "do", ids[2]: "don't"}
    assert "DON&#x27;T: " + ids[2] in panel.examples_html.value
    panel.text_box.value = "A **9** has a closed loop; a 4 is open at the top."
    panel.reason_box.value = "dev mixes them"
    panel.effective_box.value = "2026-W05"
    panel.save_button.click()
    assert panel.error_box.value == ""
    hist = Guidelines(project).history("4|9")
    assert len(hist) == 1 and panel.last_revision == int(hist.iloc[0]["revision_id"])
    row = hist.iloc[0]
    assert row["author"] == "server-side-user" and row["reason"] == "dev mixes them"
    assert row["effective_batch"] == "2026-W05"
    assert row["examples"] == {ids[0]: "do", ids[1]: "do", ids[2]: "don't"}
    assert "Saved revision" in panel.save_status.value
    assert "revision 1" in panel._content(k)[2][-1]
    assert "<strong>9</strong>" in panel.html.value
    # the examples can be shown in the gallery again
    panel.show_examples_button.click()
    assert sel.ids == tuple(sorted(ids[:3]))
    # bad input: shown, nothing written
    panel.text_box.value = "   "
    panel.save_button.click()
    assert "empty" in panel.error_box.value
    panel.text_box.value = "ok"
    panel.effective_box.value = "not a batch"
    panel.save_button.click()
    assert "neither a batch" in panel.error_box.value
    assert len(Guidelines(project).history()) == 1


def test_read_only_session_hides_the_editor_and_the_save_handler_refuses(root, monkeypatch):
    project = wb.open_project(root)
    Guidelines(project).revise("1|7", "A 7 has a bar.", author="lead")
    monkeypatch.setenv("WORKBENCH_ROLE", "manager")
    sel = Selection()
    app = VendorsAndGuidelines(project, sel)
    panel = app.guidelines
    classes = _classes(app)
    assert "wb-readonly" in classes
    assert not {"wb-guideline-save", "wb-guideline-text", "wb-tag-add"} & classes
    panel.select_pair(_pair_row(panel, "1|7"))
    assert "A 7 has a bar." in panel.html.value  # still shown
    # a crafted message to the hidden widgets still reaches the kernel: it must refuse
    panel.text_box.value = "forged"
    sel.picked = list(sel.ids[:1])
    panel.add_do_button.click()
    panel.save_button.click()
    assert panel.save() is None
    assert "read-only" in panel.error_box.value
    panel.raise_errors = True
    with pytest.raises(wb.errors.ReadOnlyError):
        panel.save()
    hist = Guidelines(project).history()
    assert len(hist) == 1 and set(hist["text"]) == {"A 7 has a bar."}
    assert panel.last_revision == -1


def test_dashboard_notebook_is_thin_and_builds_the_board():
    import json
    from pathlib import Path

    path = Path(__file__).parents[2] / "notebooks" / "04_vendors_and_guidelines.ipynb"
    cells = json.loads(path.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "wb.widgets.VendorsAndGuidelines" in code and "wait_for_viewer()" in code
    assert "def " not in code and "class " not in code
    from workbench.serve import ROLE_NOTEBOOKS

    assert path.name in ROLE_NOTEBOOKS["curator"]
    assert path.name not in ROLE_NOTEBOOKS["manager"]


# ---------------------------------------------------------------- QC rounds


def test_qc_rounds_list_report_pass_fail_and_row_selects_items():
    from tests.unit.test_qc import hand_round
    from workbench.widgets.qc_round_view import QcRoundView

    project, store, r, _ = hand_round()
    sel = Selection()
    view = QcRoundView(project, sel, store=store)
    assert view.rounds["round_id"].tolist() == [r.round_id]
    view.round_rows.rows[0].button.click()  # what the browser's click does
    assert view.round_id == r.round_id and view.error_box.value == ""
    expected = wb.qc_report(project, r.round_id, store=store)
    pd.testing.assert_frame_equal(view.report, expected)
    assert not expected["passed"].all()  # the careless annotator fails
    for k, (_, row) in enumerate(expected.iterrows()):
        result = view.report_rows.rows[k].cells[-1].value
        assert ("PASS" in result) == bool(row["passed"])
        assert ("wb-qc-fail" in result) == (not row["passed"])
    assert "row(s) fail" in view.summary.value
    worst = len(expected) - 1  # the weakest annotator is ranked last
    view.report_rows.rows[worst].button.click()
    assert sel.ids == tuple(sorted(expected.iloc[worst]["item_ids"]))
    assert sel.origin is view


def test_board_has_a_qc_tab_that_says_when_there_is_no_round(root):
    app = VendorsAndGuidelines(wb.open_project(root))
    assert app.tabs.get_title(2) == "QC rounds"
    assert app.qc_rounds.rounds.empty and "No QC round yet" in app.qc_rounds.summary.value
