"""Run the benchmarks and write a Markdown report (``make bench``)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import os
import platform
import sys
from pathlib import Path

from tfsbed.bench import AREAS, Table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfsbed.bench")
    parser.add_argument("--out", type=Path, default=Path("reports/bench.md"))
    parser.add_argument("--only", default="", help="comma-separated areas: " + ",".join(AREAS))
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    wanted = [a for a in args.only.split(",") if a] or list(AREAS)
    unknown = sorted(set(wanted) - set(AREAS))
    if unknown:
        parser.error(f"--only: unknown area(s) {', '.join(unknown)}; known: {', '.join(AREAS)}")
    sections: list[str] = []
    failed = False
    for area in wanted:
        if importlib.util.find_spec(AREAS[area]) is None:
            print(f"bench: {area}: not implemented yet", file=sys.stderr)
            continue
        print(f"bench: {area}: running", file=sys.stderr, flush=True)
        try:
            tables: list[Table] = importlib.import_module(AREAS[area]).collect(quick=args.quick)
        except Exception as exc:  # a broken benchmark must not hide the others' figures
            failed = True
            print(f"bench: {area}: failed: {exc}", file=sys.stderr)
            sections.append(f"## {area}\n\nFAILED: {exc}\n")
            continue
        sections.append(f"## {area}\n\n" + "\n".join(t.to_markdown() for t in tables))
    header = (
        f"# Benchmarks\n\nMeasured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} on "
        f"{platform.machine()} with {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"by `make bench` (`python -m tfsbed.bench{' --quick' if args.quick else ''}`).\n\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + "\n".join(sections))
    print(f"bench: wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
