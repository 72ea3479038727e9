"""The load-test report: Locust's CSV statistics turned into `summary.json` and `summary.md`.

Per endpoint and in total: requests, failures, req/s, p50/p95/p99 and max; the sustained daily volume of
credit queries (score queries + score checks + credit checks, per second x 86,400) as a multiple of the
public target of 3,000 a day; the server workers' memory; and pass/fail against the targets of DESIGN §6
(0 errors, p99 <= 100 ms, the target rate reached, worker RSS <= 200 MB).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DAILY_TARGET = 3_000
"""Public target: more than 3,000 credit queries a day (DESIGN §5)."""
P99_TARGET_MS = 100.0
RSS_TARGET_MB = 200.0
RATE_TOLERANCE = 0.95
"""The rate counts as reached at 95 % of the target (pacing jitter of a few hundred paced users)."""
CREDIT_QUERY_ENDPOINTS = ("POST /v1/scores/query", "POST /v1/scores/check", "POST /v1/credit-checks")
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class EndpointStats:
    name: str  # "METHOD /route/template" ("Total" for the aggregate)
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    avg_ms: float


def _number(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:  # Locust writes "N/A" for percentiles of an endpoint without requests
        return 0.0


def read_stats(path: Path) -> tuple[list[EndpointStats], EndpointStats]:
    """Per-endpoint rows and the aggregate row of Locust's `<prefix>_stats.csv`."""
    rows: list[EndpointStats] = []
    total: EndpointStats | None = None
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            aggregate = row["Name"] == "Aggregated"
            stats = EndpointStats(
                name="Total" if aggregate else f"{row['Type']} {row['Name']}",
                requests=int(_number(row["Request Count"])), failures=int(_number(row["Failure Count"])),
                rps=round(_number(row["Requests/s"]), 2), p50_ms=_number(row["50%"]), p95_ms=_number(row["95%"]),
                p99_ms=_number(row["99%"]), max_ms=round(_number(row["Max Response Time"]), 1),
                avg_ms=round(_number(row["Average Response Time"]), 1))
            if aggregate:
                total = stats
            else:
                rows.append(stats)
    if total is None:
        raise ValueError(f"{path} has no aggregate row")
    return sorted(rows, key=lambda r: -r.requests), total


def read_failures(path: Path) -> list[dict[str, Any]]:
    """Locust's `<prefix>_failures.csv`: what failed, where and how often (most frequent first)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        failures = [{"endpoint": f"{r['Method']} {r['Name']}", "error": r["Error"],
                     "occurrences": int(_number(r["Occurrences"]))} for r in csv.DictReader(handle)]
    return sorted(failures, key=lambda f: -int(f["occurrences"]))


def _target(name: str, target: str, measured: Any, passed: bool) -> dict[str, Any]:
    return {"target": target, "measured": measured, "pass": passed, "name": name}


def build_summary(*, stats_csv: Path, failures_csv: Path, target_rate: float, config: dict[str, Any],
                  server: dict[str, Any], generator: dict[str, Any], fixtures: dict[str, Any]) -> dict[str, Any]:
    """The report as one JSON-able dict (what `summary.json` holds and `summary.md` renders)."""
    endpoints, total = read_stats(stats_csv)
    by_name = {e.name: e for e in endpoints}
    credit_rps = sum(by_name[n].rps for n in CREDIT_QUERY_ENDPOINTS if n in by_name)
    credit_failures = sum(by_name[n].failures for n in CREDIT_QUERY_ENDPOINTS if n in by_name)
    per_day = credit_rps * SECONDS_PER_DAY
    worker_rss = [w["rss_mb"] for w in server.get("workers", [])]
    max_rss = max(worker_rss, default=0.0)
    targets = [
        _target("errors", "0", total.failures, total.failures == 0 and total.requests > 0),
        _target("p99_ms", f"<= {P99_TARGET_MS:g}", total.p99_ms, 0 < total.p99_ms <= P99_TARGET_MS),
        _target("rate_rps", f">= {RATE_TOLERANCE:.0%} of {target_rate:g}", total.rps,
                total.rps >= RATE_TOLERANCE * target_rate),
        _target("worker_rss_mb", f"<= {RSS_TARGET_MB:g}", max_rss, bool(worker_rss) and max_rss <= RSS_TARGET_MB),
    ]
    return {
        "config": config,
        "fixtures": fixtures,
        "total": asdict(total),
        "endpoints": [asdict(e) for e in endpoints],
        "failures": read_failures(failures_csv),
        "credit_queries": {
            "endpoints": list(CREDIT_QUERY_ENDPOINTS),
            "per_second": round(credit_rps, 2),
            "failures": credit_failures,
            "per_day": round(per_day),
            "target_per_day": DAILY_TARGET,
            "multiple_of_target": round(per_day / DAILY_TARGET, 1),
        },
        "server": server,
        "generator": generator,
        "targets": targets,
        "pass": all(t["pass"] for t in targets),
    }


def _ms(value: float) -> str:
    return f"{value:g}"


def render_markdown(summary: dict[str, Any]) -> str:
    """A human-readable page of the summary."""
    config, total, credit = summary["config"], summary["total"], summary["credit_queries"]
    lines = [
        f"# Load test {config['started_at']} — {'PASS' if summary['pass'] else 'FAIL'}",
        "",
        f"`{config['command']}`",
        "",
        f"Target {config['target_rps']:g} req/s for {config['duration_s']} s (after {config['warmup_s']} s of ramp-up, "
        f"excluded from the statistics); {config['users']} simulated users in {config['locust_workers']} Locust "
        f"worker processes; server: granian, {config['server_workers']} worker(s), XINYI_ENV=production, "
        f"{config['database']} + {config['store']}; machine: {config['machine']}.",
        "",
        "## Targets",
        "",
        "| target | goal | measured | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t['name']} | {t['target']} | {t['measured']} | {'pass' if t['pass'] else '**FAIL**'} |"
              for t in summary["targets"]]
    plan = config.get("plan", {})
    if plan:
        lines += ["", "## User classes", "",
                  "| class | share of requests | users | task runs/s per user | planned req/s |",
                  "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {p['share_percent']:g} % | {p['users']} | {p['iterations_per_second_per_user']:g} | "
                  f"{p['planned_rps']:g} |" for name, p in plan.items()]
    lines += [
        "",
        "## Credit queries",
        "",
        f"Score queries + score checks + credit checks: **{credit['per_second']:g} per second**, i.e. "
        f"**{credit['per_day']:,} a day** sustained = **{credit['multiple_of_target']:g} x** the public target of "
        f"{credit['target_per_day']:,} a day ({credit['failures']} failed).",
        "",
        "## Endpoints",
        "",
        "| endpoint | requests | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in [*summary["endpoints"], total]:
        name = "**Total**" if e["name"] == "Total" else f"`{e['name']}`"
        lines.append(f"| {name} | {e['requests']:,} | {e['failures']:,} | {e['rps']:g} | {_ms(e['p50_ms'])} | "
                     f"{_ms(e['p95_ms'])} | {_ms(e['p99_ms'])} | {_ms(e['max_ms'])} |")
    if summary["failures"]:
        lines += ["", "## Failures", "", "| endpoint | error | occurrences |", "|---|---|---:|"]
        lines += [f"| `{f['endpoint']}` | {f['error']} | {f['occurrences']:,} |" for f in summary["failures"][:30]]
    server, generator = summary["server"], summary["generator"]
    lines += ["", "## Processes", "",
              "| process | pid | RSS MB (end) | peak RSS MB | CPU used | CPU waited for |",
              "|---|---:|---:|---:|---:|---:|"]
    for role, rows in (("server worker", server.get("workers", [])),
                       ("locust", generator.get("processes", []))):
        for p in rows:
            label = role if role != "locust" else f"locust {p['role']}"
            lines.append(f"| {label} | {p['pid']} | {p['rss_mb']} | {p['peak_rss_mb']} | {p['cpu_share']} | "
                         f"{p['cpu_wait_share']} |")
    postgres, redis, machine = server.get("postgres_backends", {}), server.get("redis", {}), server.get("machine", {})
    if postgres:
        lines.append(f"| postgres backends of the database ({postgres['processes']}) | | | | "
                     f"{postgres['cpu_share']} | {postgres['cpu_wait_share']} |")
    if redis:
        lines.append(f"| redis-server (shared) | | | | {redis['cpu_share']} | {redis['cpu_wait_share']} |")
    if machine:
        lines += ["", f"The whole machine kept {machine['busy_cores']} of its {machine['cores']} cores busy during the "
                  "run (this load test and anything else running)."]
    lines += ["", "CPU columns are shares of one core over the Locust run: time on a CPU, and time runnable but "
              "waiting for one (other processes on the machine had it). Locust workers' busiest CPU share: "
              f"{generator.get('max_worker_cpu_share', 'n/a')} of one core (Locust warns above 0.9; below that the "
              f"generator was not the bottleneck). Load average before / after: {config.get('loadavg_before')} / "
              f"{config.get('loadavg_after')}.", ""]
    lines += ["Files: `locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`, "
              "`locust_exceptions.csv`, `locust.html`, `summary.json`, `prepare.log` (migrations, seed, fixtures), "
              "`server.log`, `locust.log`, `locust-worker-*.log`.", ""]
    return "\n".join(lines)


def write_report(folder: Path, summary: dict[str, Any]) -> None:
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    (folder / "summary.md").write_text(render_markdown(summary))
