"""EmbeddingMap without a browser: the jupyter-scatter widget's ``selection`` trait is set as
the browser sets it (lasso, click), and the shared Selection is checked both ways."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.selection import Selection
from workbench.widgets.embedding_map import (
    EmbeddingMap,
    MapPanel,
    color_options,
    color_values,
    no_embeddings_note,
)

from .conftest import dom_classes


def _pca_layout(ids, X) -> pd.DataFrame:
    from sklearn.decomposition import PCA

    xy = PCA(2, random_state=0).fit_transform(X)
    return pd.DataFrame({"item_id": ids, "x": xy[:, 0], "y": xy[:, 1]})


@pytest.fixture(scope="module")
def embedded(sample_project):
    """The sample as an in-memory project whose embeddings are its model's probabilities."""
    p = sample_project
    ids, probs = p.pred_probs()
    emb = pd.DataFrame(probs, columns=[f"e{i}" for i in range(probs.shape[1])])
    emb.insert(0, "item_id", ids)
    items = p.items.copy()
    items["weight"] = np.arange(len(items), dtype=float)  # a numeric metadata column
    return wb.Project.from_frames(items=items, annotations=p.annotations,
                                  predictions=p.predictions, classes=p.classes,
                                  default_run=p.default_run, name="embedded", embeddings=emb)


@pytest.fixture(scope="module")
def layout(embedded):
    return _pca_layout(*embedded.embedding_matrix())


@pytest.fixture
def emap(embedded, layout):
    return EmbeddingMap(embedded, Selection(), layout=layout)


def test_lasso_publishes_the_items_with_the_map_as_origin(emap, layout):
    points = np.array([3, 10, 11, 500], dtype=np.uint32)
    emap.scatter.widget.selection = points  # what the browser sends after a lasso
    sel = emap.selection
    assert sel.ids == tuple(sorted(layout["item_id"].to_numpy()[points]))
    assert sel.origin is emap
    assert "4 items lassoed on the map" == sel.description
    assert "<b>4</b> selected" in emap.info.value


def test_click_on_a_point_publishes_one_item(emap, layout):
    emap.scatter.widget.selection = np.array([42], dtype=np.uint32)
    item = layout["item_id"].iloc[42]
    assert emap.selection.ids == (item,)
    assert emap.selection.description == f"item {item} on the map"
    # a click on empty space (the browser sends no point) drops the map's own selection
    emap.scatter.widget.selection = np.array([], dtype=np.uint32)
    assert emap.selection.ids is None


def test_a_selection_made_elsewhere_is_highlighted_without_feedback(emap, layout):
    sel = emap.selection
    calls = []
    sel.observe(lambda c: calls.append(c["new"]), names=["ids"])
    other = object()
    chosen = layout["item_id"].iloc[[7, 1, 300]].tolist()
    sel.select(chosen + ["not-on-the-map"], origin=other, description="a confusion cell")
    assert sorted(emap.scatter.widget.selection.tolist()) == [1, 7, 300]
    assert len(calls) == 1 and sel.origin is other  # the map did not publish it back
    # the browser echoes the highlighted points: nothing changes, no second notification
    emap.scatter.widget.selection = np.array([300, 1, 7], dtype=np.uint32)
    assert len(calls) == 1 and sel.origin is other
    assert sel.description == "a confusion cell"
    sel.clear(origin=other)
    assert len(emap.scatter.widget.selection) == 0
    assert sel.ids is None and len(calls) == 2


@pytest.mark.parametrize("dtype", ["str", object])
def test_a_lasso_on_a_shuffled_layout_publishes_sorted_ids(embedded, layout, dtype):
    # points in layout order are not in id order here: the map sorts before publishing
    shuffled = layout.sample(frac=1.0, random_state=0).reset_index(drop=True)
    shuffled["item_id"] = shuffled["item_id"].astype(dtype)
    m = EmbeddingMap(embedded, Selection(), layout=shuffled)
    points = np.array([0, 5, 9, 700], dtype=np.uint32)
    m.scatter.widget.selection = points
    assert m.selection.ids == tuple(sorted(shuffled["item_id"].to_numpy()[points]))
    assert m.points_of(m.selection.ids).tolist() == points.tolist()
    assert m.ids.tolist() == shuffled["item_id"].tolist()
    # the colours follow the points, not the items' order
    labels = embedded.reference_labels()
    assert np.asarray(m._colors("label")).tolist() == \
        labels.loc[shuffled["item_id"].astype(str)].tolist()
    dup = pd.concat([shuffled, shuffled.iloc[[3]]], ignore_index=True)
    with pytest.raises(ValueError, match="more than once"):
        EmbeddingMap(embedded, layout=dup)


def test_ids_and_points_are_mapped_with_numpy(emap, layout):
    ids = layout["item_id"].to_numpy()
    pts = emap.points_of([ids[9], ids[2], "unknown"])
    assert pts.dtype == np.uint32 and pts.tolist() == [2, 9]
    assert emap.ids_of(np.array([2, 9], dtype=np.uint32)).tolist() == [ids[2], ids[9]]
    assert emap.points_of(None).size == 0


def test_colour_options_and_values(embedded, emap, layout):
    keys = [k for _s, k in color_options(embedded)]
    assert keys[:5] == ["label", "correct", "label_issue", "disagreement", "tag"]
    assert "meta:scanner" in keys and "meta:weight" in keys
    ids = layout["item_id"].to_numpy()

    label = color_values(embedded, "label", ids)
    assert list(label.categories) == [c for c in embedded.classes if c in set(label)]
    ref = embedded.reference_labels()
    assert (np.asarray(label, dtype=str) == ref.loc[ids].to_numpy(dtype=str)).all()

    correct = color_values(embedded, "correct", ids, run="candidate")
    err = embedded.errors("candidate").set_index("item_id")["correct"]
    expect = np.where(err.loc[ids].to_numpy(dtype=bool), "correct", "wrong")
    assert (np.asarray(correct, dtype=str) == expect).all()

    score = color_values(embedded, "label_issue", ids)
    assert score.dtype == np.float32 and 0 <= score.min() and score.max() <= 1
    issues = wb.label_issues(embedded).set_index("item_id")["label_quality"]
    worst = issues.idxmin()
    assert score[list(ids).index(worst)] == pytest.approx(1 - issues.min(), abs=1e-6)

    dis = color_values(embedded, "disagreement", ids)
    assert set(dis.categories) <= {"annotators disagree", "annotators agree",
                                   "fewer than 2 labels"}
    assert (np.asarray(dis) == "annotators disagree").sum() > 0

    weight = color_values(embedded, "meta:weight", ids)
    assert weight.dtype == np.float32 and weight.min() == 0 and weight.max() == 1
    scanner = color_values(embedded, "meta:scanner", ids)
    assert set(scanner.categories) == set(embedded.items["scanner"])

    with pytest.raises(ValueError, match="'by' parameter of EmbeddingMap must be a str among"):
        color_values(embedded, "nope", ids)


def test_numeric_colouring_with_infinite_and_missing_values(embedded, layout):
    ids = layout["item_id"].to_numpy()
    items = embedded.items.copy()
    order = {item: i for i, item in enumerate(items["item_id"].astype(str))}
    first, second, third = (order[i] for i in ids[:3])
    base = np.linspace(1, 10, len(items))
    # one inf must not flatten the scale: it takes the top colour, the rest keep theirs
    with_inf = base.copy()
    with_inf[first] = np.inf
    with_inf[second] = -np.inf
    p = wb.Project.from_frames(items=items.assign(w=with_inf))
    got = color_values(p, "meta:w", ids)
    assert got.dtype == np.float32 and got[0] == 1 and got[1] == 0
    assert len(np.unique(got)) > len(ids) // 2
    # a missing value is its own colour, never the smallest value's
    with_nan = base.copy()
    with_nan[first] = np.nan
    with_nan[third] = base.min()
    p = wb.Project.from_frames(items=items.assign(w=with_nan))
    got = color_values(p, "meta:w", ids)
    assert isinstance(got, pd.Categorical) and got[0] == "missing" and got[2] != "missing"
    assert list(got.categories)[-1] == "missing" and 2 < len(got.categories) <= 9


def test_the_dropdown_recolours_the_points_and_the_legend(emap):
    w = emap.scatter.widget
    assert "wb-map-color" in emap.color_picker._dom_classes
    assert w.legend and w.color_title == "label"
    emap.color_picker.value = "correct"
    assert emap.color_by == "correct" and w.color_title == "prediction correct"
    legend = [v[0] for v in w.legend_encoding["color"]["values"]]
    assert sorted(legend) == ["correct", "wrong"]
    codes = w.points[:, 2]
    wrong = np.asarray(emap._frame["prediction correct"]) == "wrong"
    assert len(set(codes[wrong])) == 1 and set(codes[wrong]).isdisjoint(codes[~wrong])
    emap.color_picker.value = "label_issue"
    assert w.color_title == "label-issue score" and w.color_scale == "linear"
    emap.color_picker.value = "meta:scanner"
    assert w.color_title == "metadata: scanner"
    assert "coloured by <b>metadata: scanner</b>" in emap.info.value
    assert emap.error_box.value == ""
    with pytest.raises(ValueError, match="'color_by' parameter of EmbeddingMap"):
        EmbeddingMap(emap.project, layout=pd.DataFrame(
            {"item_id": emap.ids, "x": 0.0, "y": 0.0}), color_by="colour")


def test_the_spatial_index_is_built_in_place_not_in_a_worker(emap):
    # the browser's regl-scatterplot reads this at creation: a worker would first copy
    # every point (slower from 1,000,000 points on, where it would use one)
    w = emap.scatter.widget
    assert w.regl_scatterplot_options["spatialIndexUseWorker"] is False
    emap.color_picker.value = "correct"
    assert w.regl_scatterplot_options["spatialIndexUseWorker"] is False


def test_shift_drag_is_a_lasso_not_a_pan(emap):
    # jupyter-scatter 1.0 creates its plots with actionKeyMap={merge: meta, remove: alt},
    # which drops regl-scatterplot's lasso key: a shift + drag panned the map off-centre.
    # The map's options (copied over jupyter-scatter's at creation) put shift back.
    keys = emap.scatter.widget.regl_scatterplot_options["actionKeyMap"]
    assert keys == {"lasso": "shift", "merge": "meta", "remove": "alt"}
    assert "shift + drag" in emap.info.value  # what the map tells the curator


def test_tag_colouring_follows_the_store(embedded, layout):
    store = wb.TagStore.for_project(embedded)
    store.add(layout["item_id"].iloc[:3], "relabel", author="test", reason="map")
    tags = color_values(embedded, "tag", layout["item_id"])
    assert list(np.asarray(tags)[:3]) == ["relabel"] * 3
    assert (np.asarray(tags)[3:] == "untagged").all()


def test_bad_layouts_are_refused_with_the_fix(embedded):
    with pytest.raises(ValueError, match="no column \\['y'\\]"):
        EmbeddingMap(embedded, layout=pd.DataFrame({"item_id": ["a"], "x": [0.0]}))
    with pytest.raises(ValueError, match="more than once"):
        EmbeddingMap(embedded, layout=pd.DataFrame({"item_id": ["a", "a"], "x": [0.0, 1.0],
                                                    "y": [0.0, 1.0]}))
    with pytest.raises(ValueError, match="non-finite"):
        EmbeddingMap(embedded, layout=pd.DataFrame({"item_id": ["a"], "x": [np.nan],
                                                    "y": [0.0]}))


def test_a_project_without_embeddings_says_how_to_get_them(sample_project):
    p = sample_project
    sample_project = wb.Project.from_frames(  # the same project, without embeddings
        items=p.items, annotations=p.annotations, predictions=p.predictions,
        classes=p.classes, default_run=p.default_run, name="plain")
    assert not sample_project.has_embeddings
    m = EmbeddingMap(sample_project)
    assert m.scatter is None and "wb-map-empty" in m._dom_classes
    assert "workbench embed" in m.info.value
    assert "workbench embed" in no_embeddings_note(sample_project, html=False)
    app = wb.widgets.ErrorExplorer(sample_project)
    assert app.map_panel is None
    assert "workbench embed" in app.notes.value
    assert [app.tabs.get_title(i) for i in range(len(app.tabs.children))] == [
        "slices", "compare runs"]
    dis = wb.widgets.DisagreementExplorer(sample_project)
    assert dis.map_panel is None and "workbench embed" in dis.header.value


@pytest.fixture
def pca_layouts(monkeypatch):
    """The explorers' map uses workbench.layout.layout; PCA keeps these tests fast."""
    import workbench.layout as wl

    real = wl.layout
    monkeypatch.setattr(wl, "layout", lambda project, method="umap", **kw:
                        real(project, "pca", **kw))


def test_error_explorer_map_tab_links_to_the_gallery(embedded, pca_layouts):
    app = wb.widgets.ErrorExplorer(embedded)
    titles = [app.tabs.get_title(i) for i in range(len(app.tabs.children))]
    assert titles[-1] == "map" and isinstance(app.map_panel, MapPanel)
    assert app.map_panel.map is None  # built when the tab is opened
    app.tabs.selected_index = len(titles) - 1
    m = app.map_panel.map
    assert isinstance(m, EmbeddingMap) and "wb-map" in dom_classes(app)
    m.scatter.widget.selection = np.array([0, 1, 2], dtype=np.uint32)  # a lasso
    assert set(app.gallery.ids_on_page) == set(m.ids[:3])
    assert "lassoed on the map" in app.status.value
    app.confusion.select_cell("3", "8")  # a selection elsewhere is highlighted
    assert sorted(m.ids_of(m.scatter.widget.selection)) == sorted(app.selection.ids)
    app.run_picker.value = "baseline"
    assert m.run == "baseline"


def test_disagreement_explorer_map_tab_starts_on_disagreement(embedded, pca_layouts):
    app = wb.widgets.DisagreementExplorer(embedded)
    titles = [app.tabs.get_title(i) for i in range(len(app.tabs.children))]
    assert titles[-1] == "Map"
    app.tabs.selected_index = len(titles) - 1
    m = app.map_panel.map
    assert m.color_by == "disagreement"
    m.scatter.widget.selection = np.array([5], dtype=np.uint32)  # a click
    assert app.gallery.ids_on_page == [m.ids[5]]
    assert app.selection.origin is m
