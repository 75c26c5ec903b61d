"""Run every ``bench_*.py`` (or the ones named) and write ``benchmarks/RESULTS.md``.

``python benchmarks/run_all.py --write-only`` rewrites ``RESULTS.md`` from the JSON files in
``benchmarks/results/`` without running anything (after running one script by hand).

A benchmark whose figures do not fit the common table registers its own section writer in
``SECTIONS`` (bench name -> function of the results JSON returning Markdown lines): the
``scale`` section (``bench_scale.py``) has one table per size, with the previous
implementation, the peer and a pass/fail column against issue 15's targets.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def _scale_section(data: dict) -> list[str]:
    sys.path.insert(0, str(HERE))
    from bench_scale import markdown

    return markdown(data, HERE / "results")


#: bench name -> its own section writer (the common table otherwise)
SECTIONS = {"scale": _scale_section}


def _fmt(x, unit=""):
    return "n/a" if x is None else f"{x:.3g}{unit}"


def write_results() -> Path:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`benchmarks/run_all.py`). Every figure is measured in the same "
        "run as its peer, on the same data; `ratio` is our seconds over the peer's seconds "
        "(below 1 = faster than the peer). Peak memory is the growth of the process's peak "
        "resident set during the call.",
        "",
    ]
    for path in sorted((HERE / "results").glob("*.json")):
        data = json.loads(path.read_text())
        if data["bench"] in SECTIONS:
            lines += SECTIONS[data["bench"]](data)
            continue
        lines += [f"## {data['bench']}", "", f"Machine: {data['meta']['machine']}; "
                  f"measured {data['meta']['when']}.", "",
                  "| operation | size | seconds | peak MB | peer | peer seconds | peer peak MB "
                  "| ratio | target | notes |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in data["rows"]:
            ours, peer = r["ours"], r.get("peer_result") or {}
            ratio = (ours["seconds"] / peer["seconds"]
                     if ours.get("seconds") and peer.get("seconds") else None)
            notes = r.get("notes", "")
            for who, m in (("ours", ours), ("peer", peer)):
                if m.get("error"):
                    notes += f" {who} failed: {m['error'].splitlines()[0]}"
            lines.append(
                f"| {r['operation']} | {r['size']} | {_fmt(ours.get('seconds'))} | "
                f"{_fmt(ours.get('peak_mb'))} | {r.get('peer') or '-'} | "
                f"{_fmt(peer.get('seconds'))} | {_fmt(peer.get('peak_mb'))} | "
                f"{_fmt(ratio, 'x')} | {r.get('target', '')} | {notes.strip()} |")
        lines.append("")
    out = HERE / "RESULTS.md"
    out.write_text("\n".join(lines))
    return out


def main(argv: list[str]) -> int:
    if "--write-only" in argv:
        print(f"wrote {write_results()}")
        return 0
    scripts = [HERE / a for a in argv] if argv else sorted(HERE.glob("bench_*.py"))
    failed = []
    for script in scripts:
        t0 = time.time()
        print(f"== {script.name}", flush=True)
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"   {script.name}: exit {rc} in {time.time() - t0:.0f} s", flush=True)
        if rc:
            failed.append(script.name)
    print(f"wrote {write_results()}")
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
