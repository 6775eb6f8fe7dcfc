"""Run the locustfile headless through Locust's library API.

Importing this module imports ``locust`` first, which monkey-patches the
process with gevent: import it only in commands that generate load (the CLI
imports it lazily). ``run`` parses ``LoadSettings`` with Locust's own parser
(plus the locustfile's options), so a library run and ``locust -f`` behave the
same; it samples the load every ``sample_interval`` seconds (interval RPS and
p95) for timelines, and writes Locust's CSV files and HTML report.

Other greenlets (the autoscaling watchers) keep running while ``run`` waits:
everything cooperates through gevent.
"""

from __future__ import annotations  # noqa: I001 - locust first: gevent monkey-patching comes before any socket

import locust
import csv
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.html import get_html_report
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter, stats_history
from locust.util.load_locustfile import load_locustfile

from tfsctl.errors import InvalidInput, Timeout, Unavailable
from tfsctl.load import thresholds
from tfsctl.load.options import LoadSettings, limits_from
from tfsctl.load.shapes import Phase
from tfsctl.load.timeline import Sample, Sampler
from tfsctl.paths import LOCUSTFILE

log = logging.getLogger(__name__)

_loaded: dict[Path, tuple[dict[str, Any], list[Any]]] = {}


@dataclass
class LoadResult:
    """What a run measured and produced."""

    settings: LoadSettings
    summary: thresholds.Summary
    verdict: thresholds.Verdict
    exit_code: int
    started_at: float  # epoch seconds, first tick of the shape
    stopped_at: float  # epoch seconds, when the load stopped
    samples: list[Sample]
    phases: list[Phase]
    by_name: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.settings.host,
            "model": self.settings.model,
            "version": self.settings.version,
            "label": self.settings.label,
            "transport": self.settings.transport,
            "shape": self.settings.shape,
            "shape_params": self.settings.shape_params,
            "users": self.settings.users,
            "duration_s": self.settings.duration,
            "summary": self.summary.to_dict(),
            "thresholds": {
                "passed": self.verdict.passed,
                "violations": list(self.verdict.violations),
                "max_failure_ratio": self.settings.limits.max_failure_ratio,
                "p95_ms": self.settings.limits.p95_ms,
                "p99_ms": self.settings.limits.p99_ms,
            },
            "exit_code": self.exit_code,
            "requests_by_name": self.by_name,
            "errors": self.errors,
            "files": self.files,
        }


def _load(locustfile: Path) -> tuple[dict[str, Any], list[Any]]:
    """Import the locustfile once per process (its event listeners register on import)."""
    key = locustfile.resolve()
    if key not in _loaded:
        if not key.is_file():
            raise InvalidInput(f"locustfile {locustfile}: no such file")
        _loaded[key] = load_locustfile(str(key))
    return _loaded[key]


def parse_options(settings: LoadSettings, locustfile: Path = LOCUSTFILE) -> Any:
    """Locust's parsed options (its own and the locustfile's) for ``settings``."""
    _load(locustfile)
    opts = get_parser().parse_args(settings.to_argv())
    if settings.token:
        opts.token = settings.token
    return opts


def run(
    settings: LoadSettings,
    report_dir: Path | None = None,
    *,
    locustfile: Path = LOCUSTFILE,
    on_sample: Callable[[Sample], None] | None = None,
    sample_interval: float = 1.0,
    grace: float = 30.0,
    abort: Callable[[], str | None] | None = None,
) -> LoadResult:
    """Apply the load described by ``settings``; return what it measured.

    The shape ends the run; ``grace`` seconds past the shape's duration the run
    is stopped and ``Timeout`` raised. ``report_dir`` receives ``locust_stats.csv``,
    ``locust_stats_history.csv``, ``locust_failures.csv``, ``locust_exceptions.csv``,
    ``timeline.csv`` and ``locust_report.html``.

    ``abort`` is asked every ``sample_interval`` seconds while the load runs (in its own
    greenlet); when it returns a reason, the run stops and ``Unavailable`` is raised with it.
    """
    shape = settings.build_shape()  # validates the shape before anything starts
    user_classes, shape_instances = _load(locustfile)
    opts = parse_options(settings, locustfile)
    selected = next((s for s in shape_instances if type(s).__name__ == "SelectedShape"), None)
    if selected is None:
        raise InvalidInput(f"locustfile {locustfile}: no SelectedShape load shape")
    env = Environment(
        user_classes=list(user_classes.values()),
        shape_class=selected,
        events=locust.events,
        parsed_options=opts,
        host=settings.host,
    )
    runner = env.create_local_runner()
    env.events.init.fire(environment=env, runner=runner, web_ui=None)
    history = gevent.spawn(stats_history, runner)
    csv_writer: StatsCSVFileWriter | None = None
    files: dict[str, str] = {}
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        csv_writer = StatsCSVFileWriter(
            env, PERCENTILES_TO_REPORT, str(report_dir / "locust"), full_history=True
        )
    writer = gevent.spawn(csv_writer) if csv_writer is not None else None

    samples: list[Sample] = []
    sampler = Sampler()
    started = time.time()

    def sample_loop() -> None:
        t0 = time.monotonic()
        while True:
            gevent.sleep(sample_interval)
            total = runner.stats.total
            sample = sampler.sample(
                time.monotonic() - t0,
                runner.user_count,
                total.num_requests,
                total.num_failures,
                total.response_times,
            )
            samples.append(sample)
            if on_sample is not None:
                on_sample(sample)

    log.info(
        "load: %s users, shape %s, %s against %s",
        settings.users,
        settings.shape,
        settings.transport,
        settings.host,
    )
    aborted: list[str] = []

    def guard_loop() -> None:
        assert abort is not None
        while True:
            gevent.sleep(sample_interval)
            reason = abort()
            if reason is not None:
                aborted.append(reason)
                runner.quit()
                return

    runner.start_shape()
    sampling = gevent.spawn(sample_loop)
    guard = gevent.spawn(guard_loop) if abort is not None else None
    limit = (shape.duration or settings.duration) + grace
    try:
        if not runner.greenlet.join(timeout=limit):
            runner.quit()
            raise Timeout(
                f"load run did not end within {limit:g}s of its start (--duration {settings.duration:g}s)"
            )
    finally:
        stopped = time.time()
        sampling.kill()
        if guard is not None:
            guard.kill()
        history.kill(block=False)
        env.events.quitting.fire(environment=env, reverse=True)
        if runner.state != "stopped":
            runner.quit()
        if writer is not None:
            writer.kill()
    if aborted:
        raise Unavailable(aborted[0])
    summary = thresholds.summarize(runner.stats.total)
    verdict = thresholds.check(summary, limits_from(opts))
    exit_code = env.process_exit_code if env.process_exit_code is not None else (0 if verdict.passed else 1)
    if report_dir is not None and csv_writer is not None:
        csv_writer.close_files()
        files = _write_reports(env, report_dir, samples)
    by_name = [
        {
            "name": entry.name,
            "method": entry.method,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p95_ms": entry.get_response_time_percentile(0.95),
        }
        for entry in runner.stats.entries.values()
    ]
    errors = [
        {"name": err.name, "error": str(err.error), "occurrences": err.occurrences}
        for err in runner.stats.errors.values()
    ]
    return LoadResult(
        settings=settings,
        summary=summary,
        verdict=verdict,
        exit_code=exit_code,
        started_at=started,
        stopped_at=stopped,
        samples=samples,
        phases=shape.phases(),
        by_name=by_name,
        errors=errors,
        files=files,
    )


def _write_reports(env: Environment, report_dir: Path, samples: list[Sample]) -> dict[str, str]:
    """Final CSV tables (Locust's layout), our per-second timeline and Locust's HTML report."""
    final = StatsCSV(env, PERCENTILES_TO_REPORT)
    files: dict[str, str] = {}
    for suffix, write in (
        ("stats", final.requests_csv),
        ("failures", final.failures_csv),
        ("exceptions", final.exceptions_csv),
    ):
        path = report_dir / f"locust_{suffix}.csv"
        with path.open("w", newline="") as handle:
            write(csv.writer(handle))
        files[suffix] = str(path)
    files["stats_history"] = str(report_dir / "locust_stats_history.csv")
    timeline = report_dir / "timeline.csv"
    with timeline.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["t", "users", "rps", "failures_per_s", "p95_ms", "requests", "failures"])
        for s in samples:
            out.writerow(
                [
                    s.t,
                    s.users,
                    s.rps,
                    s.failures_per_s,
                    "" if s.p95_ms is None else s.p95_ms,
                    s.requests,
                    s.failures,
                ]
            )
    files["timeline"] = str(timeline)
    html = report_dir / "locust_report.html"
    html.write_text(get_html_report(env, show_download_link=False))
    files["html"] = str(html)
    return files


def token_from_env() -> str | None:
    """The load token from ``TFSCTL_LOAD_TOKEN`` (the CLI never takes it as a plain flag value)."""
    return os.environ.get("TFSCTL_LOAD_TOKEN") or None
