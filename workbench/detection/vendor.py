"""The relabel loop for boxes: send queued images to a labelling vendor, import their boxes.

:func:`workbench.export_relabel_queue`, :func:`workbench.import_labels` and
:func:`workbench.read_labels` dispatch here for a detection project.

Export (:func:`export_box_queue`)
    The images of the relabel queue (tagged ``relabel`` on the image or on one of its boxes)
    as Label Studio tasks, a COCO instances file or a CSV, written atomically; the exported
    images are marked ``sent``.

    * ``labelstudio``: one task per image. ``data`` holds ``image`` (the URL, as for
      classification), ``item_id``, ``width``, ``height``, the image metadata,
      ``boxes_in_question`` (the tagged box ids) and ``reason``. Two pre-annotations
      (``predictions``): model version ``"current"`` with the image's reference boxes,
      and, when the project has a run, the default run's boxes (model version = the run,
      each region with its ``score``; boxes below ``min_score`` left out unless tagged:
      a tagged detection is an object the dataset misses). Each region is
      a ``rectanglelabels`` result in Label Studio's **percent** coordinates
      (``x = 100 * x_px / width``, ``y = 100 * y_px / height``, same for ``width`` and
      ``height``) with ``original_width``, ``original_height`` and ``image_rotation`` 0.
      A reference box's region ``id`` **is its box_id** (a detection's, its pred_id), so a
      region that comes back with that id is recognised however far it was moved (any
      other region is matched by IoU); a box in question carries its reason in the
      region's ``meta.text``.
    * ``coco``: :func:`workbench.export_coco` of the queued images and their current boxes;
      each image carries ``wb_item_id`` and each annotation ``wb_box_id`` (COCO ids must be
      numbers), ``in_question`` and ``reason``.
    * ``csv``: one row per box (``item_id``, ``filepath``, ``width``, ``height``,
      ``box_id``, ``label``, ``x``, ``y``, ``w``, ``h`` in pixels, ``in_question``,
      ``reason``, ``status``; an image without boxes gets one row with empty box cells);
      formula-like cells guarded as for classification
      (:func:`workbench.relabel.neutralize_cell`).

Import (:func:`import_box_labels`)
    Reads a Label Studio JSON export (``annotations[].result[]`` of type
    ``rectanglelabels``, or ``rectangle`` + ``labels`` results sharing an id) or a COCO
    instances file, validates **everything** before writing (a rectangle without
    ``original_width``/``original_height``, an image size that is not the project's, a
    rotated rectangle, a label not among the classes, a box outside the image beyond the
    project's tolerance, ``w``/``h`` <= 0, an unknown image: one :class:`SchemaError`
    naming the file, task, annotation, region and value, and the fix; nothing written),
    then, under the import lock:

    * every imported annotation becomes its annotator's boxes on that image (Label Studio:
      ``completed_by`` -> ``ls-<id>`` or the user's email, as for classification; COCO: the
      annotation's ``annotator`` key, else ``annotator=``, else ``"vendor"``), replacing that
      annotator's earlier boxes on the image;
    * the image's newest imported annotation (``updated_at``, else ``created_at``, else
      file order; one Label Studio marks ``ground_truth`` first) becomes its **reference
      boxes**, replacing the old ones: a box matched to
      an old box keeps the old ``box_id`` (so its tags survive) and metadata (``area`` is
      emptied when the box changed shape, so ``w * h`` is used); an added box gets a new id
      ``{item_id}/b{k}``; the boxes file is written with its ``box_id`` column;
    * an annotation with no rectangle means "no object on this image" (all its boxes are
      deleted); a task without annotations imports nothing for its image;
    * the imported images in the queue are marked ``relabeled``.

    Both files are rewritten atomically after a backup in ``.workbench/backups/``.
    Importing the same file again changes nothing (every box ``unchanged``, no annotation
    duplicated, nothing rewritten).

The diff (:func:`diff_boxes`)
    Per image, old reference boxes against new ones, one to one: first by identity (a
    region whose id is an old box_id of that image), then the rest by the Hungarian
    algorithm on ``1 - IoU`` over pairs with ``IoU >= iou`` (class-agnostic, so a box that
    changed class in place is matched; the same solver as
    :func:`workbench.match_annotators`). A matched pair is ``unchanged`` (same class, IoU
    >= 1 - 1e-9), ``moved`` (same class, coordinates changed) or ``reclassed`` (class
    changed; when the box also moved, the outcome is ``reclassed`` and the column ``moved``
    is True: one row per box, the class change being what a curator checks first). An
    unmatched old box is ``deleted``, an unmatched new one ``added``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_write, backup_copy, backup_stamp, backups_folder, import_lock, table_path
from .._validation import check_fraction, check_option
from ..errors import StoreError
from ..session import current_author, require_write
from ..tags import TagStore
from .box_diff import _SAME, DIFF_OUTCOMES, _diff_frame, _match, diff_boxes
from .vendor_export import EXPORT_FORMATS, export_box_queue
from .vendor_read import IMPORT_FORMATS, _read, read_box_labels

__all__ = ["export_box_queue", "read_box_labels", "import_box_labels", "diff_boxes",
           "BoxImportReport", "DIFF_OUTCOMES", "EXPORT_FORMATS", "IMPORT_FORMATS"]


class BoxImportReport:
    """What an import of a vendor's boxes did (:func:`import_box_labels`).

    Attributes
    ----------
    path : Path
        The imported file.
    format : str
        ``'labelstudio'`` or ``'coco'``.
    labels : DataFrame
        Every box read (see :func:`read_box_labels`).
    diff : DataFrame
        The reference boxes of the imported images, old against new (see
        :func:`diff_boxes`): ``item_id``, ``outcome``, ``old_box_id``, ``new_box_id``,
        ``old_label``, ``new_label``, ``iou``, ``moved``, ``x``, ``y``, ``w``, ``h``.
    per_image : DataFrame
        ``item_id``, ``annotator`` (whose boxes became the reference), ``n_old``, ``n_new``
        and one count per outcome.
    slices : DataFrame
        ``column``, ``value``, ``n_items``, ``n_imported``, ``label_issues_before``,
        ``label_issues_after`` (rows flagged ``is_issue`` by :func:`workbench.label_issues`
        on the slice's images; NaN without a run), ``agreement_before``,
        ``agreement_after`` (the annotators' detection F1 of
        :func:`workbench.agreement_summary` on the slice's images, computed with
        ``labelled='boxes'`` so that a vendor who drew on a few images is compared on those
        only; NaN with fewer than two annotators), for the whole project
        (``column='(all)'``) and each image metadata value holding imported images.
    per_slice : DataFrame
        ``slices`` (the attribute name of the classification ``ImportReport``).
    changed : DataFrame
        The rows of ``diff`` that are not ``unchanged``.
    counts : dict
        Boxes per outcome.
    n_annotations_replaced : int
        (image, annotator) box sets rewritten in the annotations.
    written : bool
        Whether the project files were rewritten (False when nothing changed).
    boxes_path, annotations_path : Path or None
        The rewritten files; ``backups`` the copies of their previous versions.
    n_relabeled : int
        Queue images marked ``relabeled``.
    project : DetectionProject
        The project after the import (re-read from disk; the caller's object is unchanged).
    """

    def __init__(self, *, path, format, labels, diff, per_image, slices,
                 n_annotations_replaced, written, boxes_path, annotations_path, backups,
                 n_relabeled, project):
        self.path, self.format, self.labels = Path(path), format, labels
        self.diff, self.per_image, self.slices = diff, per_image, slices
        self.n_annotations_replaced = n_annotations_replaced
        self.written, self.boxes_path, self.annotations_path = written, boxes_path, \
            annotations_path
        self.backups, self.n_relabeled, self.project = backups, n_relabeled, project

    @property
    def counts(self) -> dict:
        """Boxes per outcome (every outcome present, 0 when none)."""
        n = self.diff["outcome"].value_counts()
        return {o: int(n.get(o, 0)) for o in DIFF_OUTCOMES}

    @property
    def per_slice(self) -> pd.DataFrame:
        """``slices``, under the name :class:`workbench.relabel.ImportReport` uses."""
        return self.slices

    @property
    def changed(self) -> pd.DataFrame:
        """The rows of ``diff`` that are not ``unchanged``."""
        return self.diff[self.diff["outcome"] != "unchanged"].reset_index(drop=True)

    def summary(self) -> str:
        """One line: images, outcomes, issues and agreement before/after, queue."""
        c = self.counts
        line = (f"{len(self.per_image)} images imported from {self.path.name}: "
                + ", ".join(f"{c[o]} {o}" for o in DIFF_OUTCOMES) + " boxes")
        everything = self.slices[self.slices["column"] == "(all)"]
        if len(everything):
            row = everything.iloc[0]
            if not pd.isna(row["label_issues_before"]):
                line += (f"; label issues {int(row['label_issues_before'])} -> "
                         f"{int(row['label_issues_after'])}")
            if not pd.isna(row["agreement_before"]) or not pd.isna(row["agreement_after"]):
                line += (f"; annotator F1 {row['agreement_before']:.3f} -> "
                         f"{row['agreement_after']:.3f}")
        line += (f"; {self.n_annotations_replaced} annotator box sets replaced; "
                 f"{self.n_relabeled} queue images marked relabeled.")
        return line

    def __repr__(self) -> str:
        return f"BoxImportReport({self.summary()})"


def _latest(sets: pd.DataFrame, by: list[str], *, ground_truth: bool = False
            ) -> pd.DataFrame:
    """The newest annotation per group (time, else file order: the later one wins).

    With ``ground_truth``, an annotation Label Studio marks as ground truth wins over any
    other of its group.
    """
    order = sets.assign(_pos=np.arange(len(sets)),
                        _gt=sets["ground_truth"].to_numpy(bool) if ground_truth
                        else np.zeros(len(sets), bool))
    order = order.sort_values(["_gt", "annotated_at", "_pos"], kind="stable",
                              na_position="first")
    return order.groupby(by, sort=False).tail(1).drop(columns=["_pos", "_gt"])


def _fresh_ids(item: str, taken: set, n: int, prefix: str) -> list[str]:
    out, k = [], 0
    while len(out) < n:
        candidate = f"{item}{prefix}{k}"
        if candidate not in taken:
            out.append(candidate)
            taken.add(candidate)
        k += 1
    return out


def _same_boxes(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if len(a) != len(b):
        return False
    key = ["label", "x", "y", "w", "h"]
    sa = a[key].assign(label=a["label"].astype(str)).sort_values(key).to_numpy(object)
    sb = b[key].assign(label=b["label"].astype(str)).sort_values(key).to_numpy(object)
    if (sa[:, 0] != sb[:, 0]).any():
        return False
    return bool(np.allclose(sa[:, 1:].astype(float), sb[:, 1:].astype(float), rtol=0,
                            atol=1e-6))


def _new_boxes(old_all: pd.DataFrame, new: pd.DataFrame, imported: list[str], iou: float):
    """The boxes table after the import, and the diff."""
    in_imp = old_all["item_id"].isin(set(imported)).to_numpy()
    old = old_all[in_imp].reset_index(drop=True)
    mo, mn, val = _match(old, new, iou)
    new_ids = np.full(len(new), None, object)
    new_ids[mn] = old["box_id"].astype(str).to_numpy(object)[mo]
    taken = set(old_all["box_id"])
    for k in np.setdiff1d(np.arange(len(new)), mn):
        new_ids[k] = _fresh_ids(new["item_id"].iat[k], taken, 1, "/b")[0]
    diff = _diff_frame(old, new, mo, mn, val, new_ids)
    # matched: the old row (id, metadata), with the new class and coordinates if changed;
    # in the file's order
    order = np.argsort(mo, kind="stable")
    mo, mn, val = mo[order], mn[order], val[order]
    kept = old.iloc[mo].reset_index(drop=True)
    changed_geom = val < _SAME
    nxy = new[["x", "y", "w", "h"]].to_numpy(float)
    for j, col in enumerate("xywh"):
        kept[col] = np.where(changed_geom, nxy[mn, j], kept[col].to_numpy(float))
    kept["label"] = pd.array(new["label"].to_numpy(object)[mn], dtype="str")
    if "area" in kept.columns and changed_geom.any():
        kept["area"] = np.where(changed_geom, np.nan, kept["area"].to_numpy(float))
    add_n = np.setdiff1d(np.arange(len(new)), mn)
    added = pd.DataFrame({
        "box_id": pd.array(new_ids[add_n], dtype="str"),
        "item_id": pd.array(new["item_id"].to_numpy(object)[add_n], dtype="str"),
        "label": pd.array(new["label"].to_numpy(object)[add_n], dtype="str"),
        **{c: nxy[add_n, j] for j, c in enumerate("xywh")},
        "iscrowd": np.zeros(len(add_n), bool)})
    parts = [old_all[~in_imp], kept]
    if len(added):
        parts.append(added)
    boxes = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else old_all.iloc[:0]
    # keep the file's image order: an image's boxes where its first box was
    first = {}
    for k, i in enumerate(old_all["item_id"].tolist()):
        first.setdefault(i, k)
    rank = boxes["item_id"].map(lambda i: first.get(i, len(old_all))).to_numpy()
    boxes = boxes.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
    return boxes[list(old_all.columns)], diff


def _new_annotations(ann: pd.DataFrame, labels: pd.DataFrame, sets: pd.DataFrame,
                     now: pd.Timestamp):
    """The annotations after the import, and how many (image, annotator) sets changed."""
    latest = _latest(sets, ["item_id", "annotator"])
    keep = np.ones(len(ann), bool)
    new_parts, replaced = [], 0
    taken = set(ann["box_id"]) if "box_id" in ann.columns else set()
    touched = ann[ann["item_id"].isin(set(latest["item_id"]))]
    groups = {k: g for k, g in touched.groupby(["item_id", "annotator"], sort=False)}
    label_groups = {k: g for k, g in labels.groupby("annotation", sort=False)}
    for item, who, key, when in zip(latest["item_id"], latest["annotator"],
                                    latest["annotation"], latest["annotated_at"],
                                    strict=True):
        rows = label_groups.get(key, labels.iloc[:0])
        rows = rows[(rows["item_id"] == item) & (rows["annotator"] == who)]
        old = groups.get((item, who))
        if old is not None and _same_boxes(old, rows):
            continue
        if old is None and not len(rows):
            continue
        replaced += 1
        if old is not None:
            keep[ann.index.get_indexer(old.index)] = False
            taken -= set(old["box_id"])
        ids = _fresh_ids(f"{item}/{who}", taken, len(rows), "/a")
        stamp = when if not pd.isna(when) else now
        part = pd.DataFrame({"box_id": pd.array(ids, dtype="str"),
                             "item_id": pd.array([item] * len(rows), dtype="str"),
                             "annotator": pd.array([who] * len(rows), dtype="str"),
                             "label": pd.array(rows["label"].to_numpy(object), dtype="str"),
                             **{c: rows[c].to_numpy(float) for c in "xywh"},
                             "annotated_at": pd.Series([stamp] * len(rows),
                                                       dtype="datetime64[us, UTC]")})
        new_parts.append(part)
    if not replaced:
        return ann, 0
    old = ann[keep]
    if "annotated_at" not in old.columns:
        old = old.assign(annotated_at=pd.Series(pd.NaT, index=old.index,
                                                dtype="datetime64[us, UTC]"))
    else:
        old = old.assign(annotated_at=pd.to_datetime(old["annotated_at"], utc=True)
                         .dt.as_unit("us"))
    out = pd.concat([p for p in [old, *new_parts] if len(p)], ignore_index=True)
    if not len(out):
        out = old
    cols = [c for c in ann.columns] + (["annotated_at"] if "annotated_at" not in ann.columns
                                       else [])
    return out[cols].reset_index(drop=True), replaced


def _per_image(diff: pd.DataFrame, ref: pd.DataFrame, imported: list[str]) -> pd.DataFrame:
    counts = pd.crosstab(diff["item_id"], diff["outcome"]).reindex(
        index=imported, columns=list(DIFF_OUTCOMES), fill_value=0)
    frame = pd.DataFrame({"item_id": pd.array(imported, dtype="str")})
    who = ref.set_index("item_id")["annotator"]
    frame["annotator"] = pd.array(who.reindex(imported).to_numpy(object), dtype="str")
    frame["n_old"] = (counts["unchanged"] + counts["moved"] + counts["reclassed"]
                      + counts["deleted"]).to_numpy(int)
    frame["n_new"] = (counts["unchanged"] + counts["moved"] + counts["reclassed"]
                      + counts["added"]).to_numpy(int)
    for o in DIFF_OUTCOMES:
        frame[o] = counts[o].to_numpy(int)
    return frame


def _per_item_evidence(project) -> pd.DataFrame:
    """Per image: label issues flagged, and matched / drawn boxes over annotator pairs."""
    ids = project.items["item_id"]
    out = pd.DataFrame(index=pd.Index(ids.to_numpy(object), name="item_id"))
    out["issues"] = np.nan
    if project.default_run is not None and len(project.predictions) and len(project.boxes):
        from .label_quality import detection_label_issues

        issues = detection_label_issues(project)
        n = issues[issues["is_issue"]].groupby("item_id").size()
        out["issues"] = n.reindex(out.index).fillna(0).to_numpy(float)
    out["matched"] = np.nan
    out["sides"] = np.nan
    ann = project.annotations
    if len(ann) and ann["annotator"].nunique() >= 2:
        from .agreement import match_annotators

        m = match_annotators(ann, classes=project.classes, labelled="boxes")
        item = m["item_id"].astype(str)
        matched = m["outcome"].isin(["agree", "other_class"]).astype(float)
        sides = m["box_id_a"].notna().astype(float) + m["box_id_b"].notna().astype(float)
        out["matched"] = matched.groupby(item).sum().reindex(out.index).fillna(0).to_numpy()
        out["sides"] = sides.groupby(item).sum().reindex(out.index).fillna(0).to_numpy()
    return out


def _slice_report(before, eb: pd.DataFrame, ea: pd.DataFrame, imported: list[str]
                  ) -> pd.DataFrame:
    """Per slice, before/after label issues and annotator F1 (``eb``/``ea``: evidence)."""
    items = before.items.set_index("item_id")
    hit = items.index.isin(imported)

    def f1(ev, mask):
        sides = ev["sides"].to_numpy()[mask]
        if np.isnan(sides).all():
            return np.nan
        total = np.nansum(sides)
        return 2 * np.nansum(ev["matched"].to_numpy()[mask]) / total if total else np.nan

    def issues(ev, mask):
        values = ev["issues"].to_numpy()[mask]
        return np.nan if np.isnan(values).all() else float(np.nansum(values))

    def row(column, value, mask):
        return {"column": column, "value": value, "n_items": int(mask.sum()),
                "n_imported": int((mask & hit).sum()),
                "label_issues_before": issues(eb, mask), "label_issues_after": issues(ea, mask),
                "agreement_before": f1(eb, mask), "agreement_after": f1(ea, mask)}

    rows = [row("(all)", "(all)", np.ones(len(items), bool))]
    for col in before.metadata_columns:
        values = items[col]
        if values.nunique(dropna=True) > 50:
            continue
        for value in sorted(map(str, pd.unique(values[hit].dropna()))):
            rows.append(row(col, value, (values.astype(str) == value).to_numpy()))
    frame = pd.DataFrame(rows)
    frame["column"] = frame["column"].astype("str")
    frame["value"] = frame["value"].astype("str")
    frame["label_issues_change"] = frame["label_issues_after"] - frame["label_issues_before"]
    frame["agreement_change"] = frame["agreement_after"] - frame["agreement_before"]
    return frame


def _write(root: Path, tables: dict[str, pd.DataFrame]) -> tuple[dict, list[Path]]:
    """Back up and rewrite the tables atomically; on a failure, put the written ones back."""
    from ..relabel import _atomic_frame

    stamp = backup_stamp()
    targets = {stem: table_path(root, stem) for stem in tables}
    backups = {stem: backup_copy(root, targets[stem], stamp) for stem in tables}
    done: list[str] = []
    try:
        for stem, frame in tables.items():
            _atomic_frame(frame, targets[stem])
            done.append(stem)
    except OSError as exc:
        for stem in done:  # best effort: the project stays as it was
            with contextlib.suppress(OSError):
                if backups[stem] is not None:
                    data = backups[stem].read_bytes()
                    atomic_write(targets[stem], lambda fh, d=data: fh.write(d), binary=True)
        raise StoreError(f"Cannot write {targets[stem]}: {exc}. The previous files are intact "
                         f"(backups in {backups_folder(root)}); make the project "
                         f"folder writable and retry.") from exc
    return targets, [b for b in backups.values() if b is not None]


def import_box_labels(project, path, *, format: str = "labelstudio", tag: str = "relabel",
                      store: TagStore | None = None, author: str | None = None,
                      annotator: str | None = None, iou: float = 0.5) -> BoxImportReport:
    """Import a vendor's boxes into a detection project and report the diff.

    Called by :func:`workbench.import_labels` for a detection project; see the module
    notes for what is written and how the diff is computed.

    Parameters
    ----------
    project : DetectionProject
    path : path-like
        A Label Studio JSON export or a COCO instances file.
    format : {'labelstudio', 'coco'}, default='labelstudio'
    tag : str, default='relabel'
        The queue whose images are marked ``relabeled``.
    store : TagStore, optional
        Default: ``TagStore.for_project(project)``.
    author : str, optional
        Who imports (default: ``workbench.session.current_author()``).
    annotator : str, optional
        COCO: the annotator of the boxes (see :func:`read_box_labels`).
    iou : float, default=0.5
        Minimum IoU for a box the vendor drew anew to match an old box (see
        :func:`diff_boxes`).

    Returns
    -------
    BoxImportReport

    Raises
    ------
    SchemaError
        Invalid file content (nothing written).
    ReadOnlyError
        In a read-only session.

    Examples
    --------
    >>> report = wb.import_labels(project, "export.json")  # doctest: +SKIP
    >>> report.diff[report.diff["outcome"] != "unchanged"]  # doctest: +SKIP
    """
    from ..relabel import _mark_relabeled, _or_none
    from .io import detection_from_frames

    check_option(format, "format", "import_labels", IMPORT_FORMATS)
    check_fraction(iou, "iou", "import_labels")
    if iou <= 0:
        raise ValueError(f"The 'iou' parameter of import_labels must be a float in (0, 1]. "
                         f"Got {iou!r} instead.")
    require_write("import labels")
    path = Path(path)
    root = getattr(project, "root", None)
    lock = import_lock(root) if root is not None else contextlib.nullcontext()
    with lock:
        current = project.reload() if root is not None else project
        labels, sets = _read(path, current, format=format, annotator=annotator)
        now = pd.Timestamp.now(tz="UTC").as_unit("us")
        ref = _latest(sets, ["item_id"], ground_truth=True).reset_index(drop=True)
        imported = sorted(ref["item_id"].tolist())
        # an annotation key names one image (a task, or a COCO image and annotator)
        new = labels[labels["annotation"].isin(set(ref["annotation"]))].reset_index(drop=True)
        boxes, diff = _new_boxes(current.boxes, new, imported, iou)
        annotations, replaced = _new_annotations(current.annotations, labels, sets, now)
        boxes_changed = bool((diff["outcome"] != "unchanged").any())
        tables = {}
        if boxes_changed:
            tables["boxes"] = boxes
        if replaced:
            tables["annotations"] = annotations
        after = current
        if tables:
            # validate the result exactly as the loader will before touching the disk
            after = detection_from_frames(
                current.items, boxes=boxes if boxes_changed else current.boxes,
                annotations=_or_none(annotations), predictions=_or_none(current.predictions),
                classes=current.classes, name=current.name, default_run=current.default_run,
                image_root=current.image_root, info=current.info)
        # the evidence before the files change: a failure here leaves them as they are
        evidence_before = _per_item_evidence(current)
        targets: dict = {}
        backups: list[Path] = []
        if tables and root is not None:
            targets, backups = _write(Path(root), tables)
            after = project.reload()
        evidence_after = (evidence_before if after is current
                          else _per_item_evidence(after))
        slices = _slice_report(current, evidence_before, evidence_after, imported)
    queue_store = store if store is not None else TagStore.for_project(project)
    n_relabeled = _mark_relabeled(queue_store, tag, imported, path,
                                  author or current_author()) if imported else 0
    return BoxImportReport(
        path=path, format=format, labels=labels.drop(columns=["annotation"]), diff=diff,
        per_image=_per_image(diff, ref, imported), slices=slices,
        n_annotations_replaced=replaced, written=bool(targets), boxes_path=targets.get("boxes"),
        annotations_path=targets.get("annotations"), backups=backups,
        n_relabeled=n_relabeled, project=after)
