"""The ``workbench`` command: validate, sample, synth, embed, precompute, serve."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _validate(args) -> int:
    from .project import validate_project

    problems = validate_project(args.path, check_media=not args.no_media)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    for p in errors:
        print(f"error: {p}")
    for p in warnings:
        print(f"warning: {p}")
    if errors or (args.strict and warnings):
        print(f"{args.path}: {len(errors)} error(s), {len(warnings)} warning(s).",
              file=sys.stderr)
        return 1
    from .project import open_project

    project = open_project(args.path)
    boxes = (f"{len(project.boxes):,} boxes, " if project.task == "detection" else "")
    print(f"{args.path}: OK ({len(project.items):,} items, {boxes}"
          f"{len(project.classes)} classes, {len(project.annotations):,} annotations, "
          f"runs {project.runs}; "
          f"{len(warnings)} warning(s)).")
    return 0


def _sample(args) -> int:
    if args.task == "detection":
        from .detection.sample import build_detection_sample

        path = build_detection_sample(args.directory, seed=args.seed)
        print(f"detection sample project written to {path}")
        return 0
    if args.task == "text":
        from .text_sample import build_text_sample

        path = build_text_sample(args.directory, seed=args.seed)
        print(f"text sample project written to {path}")
        return 0
    from .sample import build_sample

    path = build_sample(args.directory, seed=args.seed)
    print(f"sample project written to {path}")
    return 0


def _synth(args) -> int:
    from .synthetic import make_project, write_project

    project = make_project(
        args.items, n_classes=args.classes, n_annotators=args.annotators,
        labels_per_item=args.labels_per_item, n_metadata=args.metadata, n_runs=args.runs,
        images=args.images, directory=args.directory if args.images else None, seed=args.seed)
    path = write_project(project, args.directory, format=args.format)
    print(f"synthetic project ({len(project.items):,} items) written to {path}")
    return 0


def _embed(args) -> int:
    from .embeddings import EMBEDDING_FILES, compute_embeddings, write_embeddings
    from .errors import WorkbenchError
    from .project import open_project

    existing = [name for name in EMBEDDING_FILES[:2] if (args.path / name).exists()]
    if existing and not args.force:
        print(f"{args.path}: {existing[0]} exists; it is kept (your model's embeddings are "
              f"better than the baseline). Pass --force to replace it with the "
              f"{args.method} baseline.", file=sys.stderr)
        return 1
    try:
        if existing:  # being replaced: read the project without them (they may be broken)
            from .errors import SchemaError
            from .project import _load, _Problems, _summary

            problems = _Problems()
            project = _load(args.path, problems, embeddings=False)
            if project is None:
                raise SchemaError(_summary(problems), problems=list(problems))
        else:
            project = open_project(args.path)
        frame = compute_embeddings(project, args.method)
        path = write_embeddings(args.path, frame)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(frame):,} embeddings ({frame.shape[1] - 1} dimensions, baseline "
          f"{frame.attrs.get('method', args.method)}) written to {path}")
    return 0


def _reopened(project, path):
    """``project`` opened again once its first (validating) read is freed.

    The first open of a project reads and checks every file into memory (7 GB at 10M
    items); opened again, its frames are memory-mapped from the table cache that open
    wrote (2.4 GB resident), which leaves the memory to the results computed next.
    """
    from .project import open_project
    from .results import _forget, release_memory

    _forget(project)
    del project
    release_memory()  # the frames are collected and their memory returned
    return open_project(path)


def _precompute(args) -> int:
    from ._cache import clear_cache
    from .errors import SchemaError
    from .project import open_project
    from .results import RESULTS, precompute

    try:  # read once; a project with errors prints what `workbench validate` prints
        project = open_project(args.path)
    except SchemaError as exc:
        problems = list(getattr(exc, "problems", None) or [])
        errors = [p for p in problems if p.severity == "error"]
        for p in errors:
            print(f"error: {p}", file=sys.stderr)
        if not errors:
            print(f"error: {exc}", file=sys.stderr)
        print(f"{args.path}: {max(1, len(errors))} error(s); nothing computed (see `workbench "
              f"validate {args.path}`).", file=sys.stderr)
        return 1
    if args.clear:
        print(f"cleared {clear_cache(args.path)} cached file(s)")
    unknown = [r for r in (args.runs or []) if r not in project.runs]
    if unknown:
        print(f"error: unknown run(s) {unknown}; the project's runs are {project.runs}.",
              file=sys.stderr)
        return 2
    wrong = [o for o in (args.only or []) if o not in RESULTS]
    if wrong:
        print(f"error: unknown result(s) {wrong}; choose among {list(RESULTS)}.",
              file=sys.stderr)
        return 2
    if getattr(project, "input_fingerprint", None) is None:
        print(f"warning: the files of {args.path} changed while they were read; the results "
              "are computed but not cached. Run precompute again.", file=sys.stderr)
    else:  # read again from the table cache just written: memory-mapped, not on the heap
        project = _reopened(project, args.path)
    report = precompute(project, runs=args.runs, only=args.only, keep=False, load=False)
    width = max([len(r) for r in report["result"]] + [6])
    for row in report.itertuples():
        line = f"{row.result:<{width}}  {row.status:<9} {row.seconds:8.1f} s"
        print(line + (f"  {row.error}" if row.error else ""))
    counts = report["status"].value_counts()
    print(f"{args.path}: {counts.get('computed', 0)} computed, {counts.get('reused', 0)} "
          f"reused, {counts.get('failed', 0)} failed in {report['seconds'].sum():.1f} s; "
          f"cache in {args.path / '.workbench' / 'cache'}")
    return 1 if counts.get("failed", 0) else 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``workbench`` command line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from .serve import main as serve_main

        return serve_main(argv[1:])
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a project folder and print every problem")
    p.add_argument("path", type=Path)
    p.add_argument("--strict", action="store_true", help="fail on warnings too")
    p.add_argument("--no-media", action="store_true", help="skip checking image files")
    p.set_defaults(func=_validate)

    p = sub.add_parser("sample", help="build the sample project (scikit-learn digits)")
    p.add_argument("directory", type=Path)
    p.add_argument("--task", choices=["classification", "detection", "text"],
                   default="classification",
                   help="classification: data/sample (default); detection: digits placed in "
                        "scenes with boxes and a sliding-window detector (data/sample-detection);"
                        " text: Python standard-library docstrings in eight areas "
                        "(data/sample-text)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_sample)

    p = sub.add_parser("synth", help="write a synthetic project with planted weak slices")
    p.add_argument("directory", type=Path)
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--annotators", type=int, default=5)
    p.add_argument("--labels-per-item", type=int, default=3)
    p.add_argument("--metadata", type=int, default=10)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--images", action="store_true")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_synth)

    p = sub.add_parser("embed", help="compute baseline embeddings (HOG+PCA images, "
                                     "TF-IDF+SVD text) into embeddings.parquet")
    p.add_argument("path", type=Path)
    p.add_argument("--method", choices=["auto", "hog", "tfidf"], default="auto",
                   help="auto: tfidf for text items, hog for images (default)")
    p.add_argument("--force", action="store_true",
                   help="replace existing embeddings.parquet / embeddings.npy")
    p.set_defaults(func=_embed)

    p = sub.add_parser("precompute", help="compute the dashboards' results into the project's "
                                          "cache (.workbench/cache), with a progress bar")
    p.add_argument("path", type=Path)
    p.add_argument("--runs", nargs="+", metavar="RUN",
                   help="runs of the per-run results (default: every run)")
    p.add_argument("--only", nargs="+", metavar="RESULT",
                   help="only these results (errors, label_issues, agreement_summary, "
                        "pairwise_agreement, annotator_quality, disagreeing_items, "
                        "confused_pairs, consensus, agreement_table, agreement_by, scorecard, "
                        "slice_metrics, discover_slices, drift)")
    p.add_argument("--clear", action="store_true",
                   help="delete the project's cached results first")
    p.set_defaults(func=_precompute)

    sub.add_parser("serve", help="serve the dashboards with Voila (see `workbench serve -h`)")
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
