"""The project remembers the FiftyOne dataset it was synced to (custom names included)."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest


def _state(project) -> dict:
    return json.loads((project.root / ".workbench" / "fiftyone.json").read_text("utf-8"))


def _same_project(project):
    """A new Project object on the same folder (what another kernel would open)."""
    import workbench as wb

    return wb.Project.from_frames(items=project.items, annotations=project.annotations,
                                  predictions=project.predictions, classes=project.classes,
                                  name=project.name, root=project.root)


# ---- no FiftyOne needed ---------------------------------------------------------------


def test_default_name_without_any_sync(tiny_project):
    import workbench.fiftyone_bridge as fb

    assert fb.synced_dataset_name(tiny_project) == f"workbench-{tiny_project.name}"
    assert not (tiny_project.root / ".workbench" / "fiftyone.json").exists()


def test_remembered_name_is_kept_in_the_state_folder_per_project_name(tiny_project):
    import workbench.fiftyone_bridge as fb

    fb._remember(tiny_project, "my-review")
    assert _state(tiny_project) == {"version": 1,
                                    "datasets": {tiny_project.name: "my-review"}}
    leftovers = [p.name for p in (tiny_project.root / ".workbench").iterdir()
                 if p.name.endswith(".tmp")]
    assert leftovers == []
    other = _same_project(tiny_project)
    assert fb.synced_dataset_name(other) == "my-review"  # a fresh object reads the file
    # another project name in the same folder keeps its own entry
    other.name = "renamed"
    assert fb.synced_dataset_name(other) == "workbench-renamed"
    fb._remember(other, "second")
    assert _state(tiny_project)["datasets"] == {tiny_project.name: "my-review",
                                                "renamed": "second"}
    assert fb.synced_dataset_name(tiny_project) == "my-review"
    # renaming a project object drops what it remembered under its old name
    tiny_project.name = "third"
    assert fb.synced_dataset_name(tiny_project) == "workbench-third"


def test_project_without_root_remembers_on_the_object():
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    items = pd.DataFrame({"item_id": ["a", "b"], "label": ["x", "y"]})
    project = wb.Project.from_frames(items=items, name="mem")
    fb._remember(project, "in-memory")
    assert fb.synced_dataset_name(project) == "in-memory"
    assert fb.synced_dataset_name(wb.Project.from_frames(items=items, name="mem")) == (
        "workbench-mem")


def test_unreadable_state_file_warns_and_uses_the_default(tiny_project):
    import workbench.fiftyone_bridge as fb

    path = tiny_project.root / ".workbench" / "fiftyone.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"unreadable FiftyOne state file .*fiftyone\.json"):
        assert fb.synced_dataset_name(tiny_project) == f"workbench-{tiny_project.name}"
    path.write_text('{"datasets": ["not", "a", "mapping"]}', encoding="utf-8")
    assert fb.synced_dataset_name(tiny_project) == f"workbench-{tiny_project.name}"


def test_unwritable_state_folder_warns_and_this_kernel_still_remembers(tmp_path):
    import workbench as wb
    import workbench.fiftyone_bridge as fb

    (tmp_path / ".workbench").write_text("a file where the folder should be")
    project = wb.Project.from_frames(items=pd.DataFrame({"item_id": ["a"]}), name="ro",
                                     root=tmp_path)
    with pytest.warns(UserWarning, match="Could not record the FiftyOne dataset 'custom'"):
        fb._remember(project, "custom")
    assert fb.synced_dataset_name(project) == "custom"


# ---- with a real mongod --------------------------------------------------------------


@pytest.mark.fiftyone
def test_pull_after_a_custom_named_sync(fo, tiny_project, ds_name):
    import workbench as wb
    from workbench.tags import TagStore

    ds = wb.to_fiftyone(tiny_project, name=ds_name)
    assert _state(tiny_project)["datasets"] == {tiny_project.name: ds_name}
    assert not fo.dataset_exists(f"workbench-{tiny_project.name}")
    ds.select_by("item_id", ["i01", "i02"]).tag_samples("relabel")  # as the App does

    stats = wb.sync_tags_from_fiftyone(tiny_project)  # no name: the remembered one
    assert stats.store_added == 2
    assert TagStore.for_project(tiny_project).items_with("relabel") == ["i01", "i02"]

    # another kernel (a new Project object on the folder) finds it through the state file
    ds.select_by("item_id", ["i03"]).tag_samples("relabel")
    again = _same_project(tiny_project)
    assert wb.sync_tags_from_fiftyone(again).store_added == 1
    # so does a plain re-sync: the same dataset is updated, no default-named one is made
    stats = wb.fiftyone_bridge.sync_project(again)
    assert stats.dataset_name == ds_name and not stats.wrote
    assert wb.fiftyone_bridge.last_sync_stats(again) is stats
    assert not fo.dataset_exists(f"workbench-{tiny_project.name}")


@pytest.mark.fiftyone
def test_an_explicit_name_still_wins(fo, tiny_project, ds_name):
    import workbench as wb
    from workbench.errors import WorkbenchError

    wb.to_fiftyone(tiny_project, name=ds_name)
    with pytest.raises(WorkbenchError, match="No FiftyOne dataset 'elsewhere'"):
        wb.sync_tags_from_fiftyone(tiny_project, name="elsewhere")
    with pytest.raises(WorkbenchError, match="No FiftyOne dataset 'elsewhere'"):
        wb.fiftyone_bridge.push_tags(tiny_project, name="elsewhere")
    # syncing under another name makes that one the project's dataset
    other = f"{ds_name}-2"
    try:
        wb.to_fiftyone(tiny_project, name=other)
        assert _state(tiny_project)["datasets"] == {tiny_project.name: other}
        assert wb.sync_tags_from_fiftyone(tiny_project).items == 16
    finally:
        if fo.dataset_exists(other):
            fo.delete_dataset(other)


@pytest.mark.fiftyone
def test_project_without_root_pulls_from_its_custom_dataset(fo, ds_name):
    import workbench as wb

    project = wb.Project.from_frames(
        items=pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["x", "y", "x"]}),
        name=f"noroot-{uuid.uuid4().hex[:6]}")
    ds = wb.to_fiftyone(project, name=ds_name)
    ds.select_by("item_id", ["b"]).tag_samples("check")
    assert wb.sync_tags_from_fiftyone(project).store_added == 1
    assert wb.fiftyone_bridge.synced_dataset_name(project) == ds_name
