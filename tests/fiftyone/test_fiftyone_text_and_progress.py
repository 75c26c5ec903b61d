"""FiftyOne and text projects (refused with a clear error), and the sync's progress bars."""

from __future__ import annotations

import pandas as pd
import pytest

import workbench as wb
from workbench.errors import WorkbenchError


@pytest.fixture
def text_project(tmp_path):
    ids = [f"t{i}" for i in range(4)]
    items = pd.DataFrame({"item_id": ids, "text": ["good film", "bad film", "fine", "awful"],
                          "label": ["pos", "neg", "pos", "neg"]})
    mem = wb.Project.from_frames(items, classes=["pos", "neg"], name="reviews")
    return wb.open_project(wb.write_project(mem, tmp_path / "reviews", format="csv"))


# ---- no FiftyOne needed: the check comes before FiftyOne is imported -------------------


def test_text_project_is_refused_by_every_entry_point(text_project, monkeypatch):
    import workbench.fiftyone_bridge as fb

    def no_fiftyone():  # the refusal must not depend on FiftyOne or MongoDB
        raise AssertionError("FiftyOne was reached for a text project")

    monkeypatch.setattr(fb, "_fiftyone", no_fiftyone)
    assert text_project.is_text
    expected = (r"to_fiftyone cannot put project 'reviews' into FiftyOne: its items are "
                r"texts .*the FiftyOne App shows images.*ItemGallery.*ItemView")
    with pytest.raises(WorkbenchError, match=expected):
        fb.to_fiftyone(text_project)
    with pytest.raises(WorkbenchError, match=expected):
        text_project.to_fiftyone()
    with pytest.raises(WorkbenchError, match="sync_project cannot put project 'reviews'"):
        fb.sync_project(text_project, name="anything")
    with pytest.raises(WorkbenchError, match="its items are texts"):
        fb.fiftyone_session(text_project)


def test_to_fiftyone_checks_the_project_type_first():
    import workbench.fiftyone_bridge as fb

    with pytest.raises(TypeError, match="'project' parameter of to_fiftyone"):
        fb.to_fiftyone("not a project")


# ---- with a real mongod: the progress bars ----------------------------------------------


class _Bars:
    """Record every bar the bridge makes (the real ``progress``, hidden) and its updates."""

    def __init__(self, monkeypatch):
        import workbench.fiftyone_bridge as fb
        from workbench._progress import progress

        self.bars = []

        def recording(*args, **kwargs):
            bar = progress(*args, **{**kwargs, "disable": True})
            bar.wb_desc, bar.wb_disable, bar.wb_updates = kwargs.get("desc"), kwargs.get(
                "disable"), []
            real_update = bar.update
            bar.update = lambda k=1: (bar.wb_updates.append(k), real_update(k))[1]
            self.bars.append(bar)
            return bar

        monkeypatch.setattr(fb, "progress", recording)

    def named(self, prefix):
        return [b for b in self.bars if (b.wb_desc or "").startswith(prefix)]


@pytest.mark.fiftyone
@pytest.mark.parametrize("fast", [True, False])
def test_sync_reports_its_steps_and_samples(fo, tiny_project, ds_name, monkeypatch, fast):
    import workbench.fiftyone_bridge as fb

    bars = _Bars(monkeypatch)
    stats = fb.sync_project(tiny_project, name=ds_name, fast=fast, batch_size=3)
    assert stats.writer == ("bulk" if fast else "api")
    (steps,) = bars.named("FiftyOne sync")
    assert ds_name in steps.wb_desc
    assert steps.total == len(fb._SYNC_STAGES) and steps.n == steps.total
    (samples,) = bars.named("FiftyOne samples")
    assert samples.total == stats.added == 16
    assert sum(samples.wb_updates) == 16  # (a hidden tqdm bar does not count ``n`` itself)
    if not fast:  # the API path advances per add_samples batch
        assert samples.wb_updates == [3, 3, 3, 3, 3, 1]

    # an unchanged re-sync writes no samples: its samples bar is hidden and stays at 0
    bars.bars.clear()
    again = fb.sync_project(tiny_project, name=ds_name, fast=fast, batch_size=3)
    assert again.added == again.updated == 0
    (steps,) = bars.named("FiftyOne sync")
    assert steps.n >= 1
    assert all(b.wb_updates == [] and b.wb_disable is True
               for b in bars.named("FiftyOne samples"))


@pytest.mark.fiftyone
def test_bulk_sync_advances_per_group_of_batches(fo, tiny_project, ds_name, monkeypatch):
    import workbench.fiftyone_bridge as fb

    monkeypatch.setattr(fb, "_BATCHES_PER_STEP", 2)
    bars = _Bars(monkeypatch)
    fb.sync_project(tiny_project, name=ds_name, batch_size=3)  # steps of 6 samples
    (samples,) = bars.named("FiftyOne samples")
    assert samples.wb_updates == [6, 6, 4]
