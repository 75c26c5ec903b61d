"""Benchmark: click a detection confusion cell to a first gallery page with boxes drawn.

In an ``ErrorExplorer`` on the detection sample (``data/sample-detection``), kernel only (no
browser): a click on a confusion-matrix cell selects its boxes (``Selection.box_ids``) and
their images, and the gallery renders its first page of 24 cards, each image read in the
kernel with its reference and predicted boxes drawn as an SVG overlay. Target < 300 ms.

Cells measured: the ``background`` column cell with the most missed boxes, the
``background`` row cell with the most false detections, and the largest diagonal cell (a
full page of 24 images). Each click is measured once in a fresh fork (cold: the cell's boxes
are not cached yet), after clearing the selection (inside the measured time).

Peer, in the same run: the bare minimum of the same work with pandas and Pillow - a mask of
the matches frame for the cell, the first 24 images read, and every box of those images
drawn with ``PIL.ImageDraw`` onto the image and encoded as PNG.

Run: ``python benchmarks/bench_detection_widgets.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import measure, record  # noqa: E402

import workbench as wb  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample-detection"
TARGET = "< 300 ms"


def _peer(project, matches, true, pred, n_cards=24):
    """pandas mask of the cell + read 24 images + draw their boxes with Pillow + PNG."""
    from PIL import Image, ImageDraw

    label = matches["label"].astype(object).fillna("background")
    predicted = matches["predicted"].astype(object).fillna("background")
    mask = (label == true).to_numpy() & (predicted == pred).to_numpy()
    items = sorted(set(matches["item_id"].to_numpy()[mask]))[:n_cards]
    boxes = project.boxes.set_index("item_id")
    preds = project.predictions
    preds = preds[preds["run"] == matches["run"].iloc[0]].set_index("item_id")
    for item_id in items:
        with Image.open(project.media_path(item_id)) as im:
            im = im.convert("RGB")
            draw = ImageDraw.Draw(im)
            for frame, color in ((boxes, "green"), (preds, "orange")):
                if item_id in frame.index:
                    rows = frame.loc[[item_id], ["x", "y", "w", "h"]].to_numpy()
                    for x, y, w, h in rows:
                        draw.rectangle([x, y, x + w, y + h], outline=color)
            out = io.BytesIO()
            im.save(out, format="PNG")
    return items


def _cells(table):
    counts = table.to_numpy().copy()
    names = list(table.index)
    bg = names.index("background")
    miss = int(np.argmax(counts[:bg, bg]))
    false = int(np.argmax(counts[bg, :bg]))
    diag = int(np.argmax(np.diag(counts)[:bg]))
    return [(names[miss], "background", "missed boxes"),
            (names[-1], names[false], "false detections"),
            (names[diag], names[diag], "correct detections")]


def main() -> int:
    from plotly.callbacks import Points

    project = wb.open_project(SAMPLE)
    app = wb.widgets.ErrorExplorer(project)
    matches = app.matches
    table = app.confusion.table
    k = len(app.confusion.classes)
    rows = []
    for true, pred, what in _cells(table):
        point = app.confusion.classes.index(true) * k + app.confusion.classes.index(pred)

        def click(point=point):
            app.selection.clear()  # a real change (counted in the time)
            app.confusion._on_click(app.confusion.figure.data[1],
                                    Points(point_inds=[point], xs=[], ys=[], trace_name=None,
                                           trace_index=1), None)
            drawn = app.gallery.drawn
            assert drawn and all(r["reference"] + r["predictions"] > 0 for r in drawn)
            assert all(r["selected"] for r in drawn), "the cell's boxes are drawn"

        ours = measure(click)
        peer = measure(_peer, project, matches, true, pred)
        n_boxes = int(table.loc[true, pred])
        rows.append({
            "operation": f"click confusion cell (true {true}, predicted {pred}: {what}) -> "
                         "first gallery page with boxes drawn",
            "size": f"{n_boxes} boxes in the cell",
            "ours": ours, "peer": "pandas mask + read 24 images + draw boxes with Pillow",
            "peer_result": peer, "target": TARGET,
            "notes": f"detection sample ({len(project.items):,} images, "
                     f"{len(project.boxes):,} boxes), run {app.run}, 24 cards, kernel only"})
        print(f"{rows[-1]['operation']}: ours {ours['seconds']} s, peer {peer['seconds']} s "
              f"(errors: {ours['error'] and ours['error'][:200]})", flush=True)
    path = record("detection_widgets", rows)
    print(f"wrote {path}")
    slow = [r for r in rows if r["ours"].get("error") or r["ours"]["seconds"] >= 0.3]
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
