"""`/metrics` counts the requests of every granian worker, not only those of the worker that answers the scrape."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import xinyi_process

ROUTE = "/.well-known/jwks.json"
REQUESTS = 200
# What a dashboard reads: the names, types and labels of the service's own metrics, whatever the worker count.
XINYI_FAMILIES = {
    "xinyi_requests": ("counter", {"method", "path", "status_code", "app_name"}),
    "xinyi_requests_error": ("counter", {"method", "path", "status_code", "app_name"}),
    "xinyi_request_duration_seconds": ("histogram", {"method", "path", "status_code", "app_name", "le"}),
    "xinyi_requests_in_progress": ("gauge", {"app_name"}),
}


def _families(text: str) -> dict[str, Metric]:
    """The exposition parsed as Prometheus text (the parser raises on anything invalid)."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def _route_count(families: dict[str, Metric]) -> float:
    return sum(s.value for s in families["xinyi_requests"].samples
               if s.name == "xinyi_requests_total" and s.labels["path"] == ROUTE and s.labels["status_code"] == "200")


def _in_progress(families: dict[str, Metric]) -> float:
    return sum(s.value for s in families["xinyi_requests_in_progress"].samples)


def _fresh_connections() -> httpx.Client:
    """A client that opens a new connection for every request, so the requests land on either worker."""
    return httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))


def _scrape(http: httpx.Client, base: str) -> dict[str, Metric]:
    answer = http.get(f"{base}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return _families(answer.text)


def _assert_xinyi_families(families: dict[str, Metric]) -> None:
    for name, (kind, labels) in XINYI_FAMILIES.items():
        if name == "xinyi_requests_error":
            continue  # present only once some request was answered with a 5xx
        assert families[name].type == kind, name
        assert {label for s in families[name].samples for label in s.labels} == labels, name


@pytest.fixture
def two_workers(app, tmp_path: Path) -> Iterator[tuple[str, Path, int, Path]]:  # type: ignore[no-untyped-def]
    """`xinyi serve --workers 2` with a temporary directory of its own (where the shared counts live), once both
    workers serve; its base URL, that directory, its pid and its log."""
    temp, log = tmp_path / "server-tmp", tmp_path / "server.log"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with xinyi_process(["serve", "--host", "127.0.0.1", "--workers", "2"], ready_path="/health/live",
                       env=env, log=log) as (base, process):
        _wait_for_log(log, "Started worker-", times=2)  # the first to serve made it ready: wait for the other
        yield base, temp, process.pid, log
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)  # a graceful stop of both workers, slow on a busy machine
    assert list(temp.iterdir()) == [], "the server leaves its metrics directory behind"


def _wait_for_log(log: Path, line: str, *, times: int) -> None:
    """Until granian has logged `line` `times` times (a worker is "Started" once it serves)."""
    deadline = time.monotonic() + 90
    while log.read_text().count(line) < times:
        assert time.monotonic() < deadline, f"granian did not log {line!r} {times} times:\n{log.read_text()}"
        time.sleep(0.2)


def _worker_pids(metrics_dir: Path) -> set[str]:
    return {f.stem.rsplit("_", 1)[1] for f in metrics_dir.glob("counter_*.db")}


def test_every_scrape_counts_the_requests_of_both_workers(two_workers: tuple[str, Path, int, Path]) -> None:
    base, temp, _, _ = two_workers
    # One short-lived client per request (a connection of its own), so the requests land on either worker; the
    # threads share no connection pool (a shared one without keep-alive can close a socket another thread reads).
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(lambda _: httpx.get(f"{base}{ROUTE}", timeout=10).status_code, range(REQUESTS))) == {200}
    with _fresh_connections() as http:
        scrapes = [_scrape(http, base) for _ in range(12)]
    assert [_route_count(f) for f in scrapes] == [REQUESTS] * len(scrapes)
    for families in scrapes:
        _assert_xinyi_families(families)
        assert _in_progress(families) == 0

    # The counts live in one private directory, and both workers wrote to it: each served some of the requests.
    [metrics_dir] = list(temp.iterdir())
    assert stat.S_IMODE(metrics_dir.stat().st_mode) == 0o700
    assert len(_worker_pids(metrics_dir)) == 2


def test_counts_survive_a_graceful_worker_restart(two_workers: tuple[str, Path, int, Path]) -> None:
    """SIGHUP makes granian replace its workers one by one: what the old ones counted stays counted, and the
    requests-in-progress gauge forgets them (each worker marks itself dead as it stops)."""
    base, temp, server_pid, log = two_workers
    with _fresh_connections() as http:
        for _ in range(20):
            assert http.get(f"{base}{ROUTE}").status_code == 200
        [metrics_dir] = list(temp.iterdir())
        old_workers = _gauge_pids(metrics_dir)
        assert len(old_workers) == 2, "each worker keeps its requests-in-progress gauge in the directory"

        os.kill(server_pid, signal.SIGHUP)
        _wait_for_log(log, "Stopped old worker-", times=2)
        _wait_for_log(log, "Started worker-", times=4)
        new_workers = _gauge_pids(metrics_dir)
        assert not old_workers & new_workers, "the old workers' gauges were not marked dead"
        assert len(new_workers) == 2

        for _ in range(5):
            families = _scrape(http, base)
            assert _route_count(families) == 20
            assert _in_progress(families) == 0


def _gauge_pids(metrics_dir: Path) -> set[str]:
    return {f.stem.rsplit("_", 1)[1] for f in metrics_dir.glob("gauge_livesum_*.db")}


async def test_one_process_exposes_the_same_families(client) -> None:  # type: ignore[no-untyped-def]
    """In one process (in-process here, as with `--workers 1`) the app keeps its metrics in memory: the same
    families, valid Prometheus text."""
    assert (await client.get(ROUTE)).status_code == 200
    answer = await client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    families = _families(answer.text)
    _assert_xinyi_families(families)
    assert _route_count(families) >= 1
