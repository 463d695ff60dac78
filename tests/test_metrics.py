"""Prometheus metrics from the real `footfall` command: off by default; summed over `--workers`; each
figure the README lists; on a port of their own with --metrics-port; and scraped by a real Prometheus
(Debian's `prometheus`) while requests flow."""

import shutil
import subprocess
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from footfall.app import API_PREFIX
from footfall.testing.receiver import Reply
from footfall.testing.serving import free_port, running_server, start_worker
from footfall.testing.tenants import Tenant

METRICS = {"FOOTFALL_METRICS": "1"}
FAST = {"FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1", "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1",
        "FOOTFALL_WEBHOOK_RETRY_SCHEDULE": "0,0.2"}
SHOW = f"{API_PREFIX}/visits/{{uuid}}"
PROMETHEUS = shutil.which("prometheus")


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample: (name, its labels) -> value."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def a_visit(base_url: str, tenant: Tenant) -> str:
    response = httpx.post(f"{base_url}{API_PREFIX}/visits", headers=tenant.headers,
                          json={"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid})
    assert response.status_code == 201, response.text
    return response.json()["data"]["uuid"]


async def test_metrics_are_off_unless_asked_for(client):
    assert (await client.get("/metrics")).status_code == 404


def test_requests_are_counted_across_every_worker_process(database_url, tenant):
    with running_server(database_url, "--workers", "2", env=METRICS) as base_url:
        uuid = a_visit(base_url, tenant)
        for _ in range(40):  # a connection each, so both processes serve some
            assert httpx.get(f"{base_url}{API_PREFIX}/visits/{uuid}", headers=tenant.headers).status_code == 200
        assert httpx.get(f"{base_url}{API_PREFIX}/visits/{uuid}").status_code == 401
        assert httpx.request("PROPFIND", f"{base_url}/healthz").status_code == 405  # counted as "other"
        batch = httpx.post(f"{base_url}{API_PREFIX}/visits/batch", headers=tenant.headers, json={"visits": [
            {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid},
            {"contact_uuid": tenant.contact_uuid, "shop_uuid": tenant.shop_uuid},
            {"contact_uuid": tenant.contact_uuid},
        ]})
        assert batch.status_code == 200, batch.text
        time.sleep(1.5)  # a pool sample
        samples = scrape(f"{base_url}/metrics")
    assert value(samples, "footfall_http_requests_total", method="GET", route=SHOW, status="200") == 40
    assert value(samples, "footfall_http_requests_total", method="GET", route=SHOW, status="401") == 1
    assert value(samples, "footfall_http_requests_total", method="other", route="/healthz", status="405") == 1
    assert value(samples, "footfall_http_request_duration_seconds_count", method="GET", route=SHOW) == 41
    assert value(samples, "footfall_http_request_duration_seconds_bucket", method="GET", route=SHOW, le="+Inf") == 41
    assert value(samples, "footfall_imported_visits_total", outcome="created") == 2
    assert value(samples, "footfall_imported_visits_total", outcome="failed") == 1
    for gauge in ("footfall_database_connections_in_use", "footfall_database_connection_waiters",
                  "footfall_webhook_deliveries_pending", "footfall_webhook_deliveries_failed",
                  "footfall_webhook_oldest_pending_seconds"):
        assert (gauge, frozenset()) in samples, gauge


def test_rate_limited_requests_are_counted_on_their_route(database_url, tenant):
    with running_server(database_url, env={**METRICS, "FOOTFALL_RATE_LIMIT": "3"}) as base_url:
        uuid = a_visit(base_url, tenant)  # the first of the 3
        statuses = [httpx.get(f"{base_url}{API_PREFIX}/visits/{uuid}", headers=tenant.headers).status_code
                    for _ in range(4)]
        samples = scrape(f"{base_url}/metrics")
    assert statuses == [200, 200, 429, 429]
    assert value(samples, "footfall_rate_limited_requests_total") == 2
    assert value(samples, "footfall_http_requests_total", method="GET", route=SHOW, status="429") == 2


def test_delivery_outcomes_and_the_outbox(database_url, tenant, receiver):
    receiver.script("/failing", Reply(500), Reply(500))
    with running_server(database_url, env={**METRICS, **FAST}) as base_url:
        for path in ("/fine", "/failing"):
            assert httpx.post(f"{base_url}{API_PREFIX}/webhook-subscriptions", headers=tenant.headers, json={
                "name": path, "event_type": "visit_created", "url": receiver.url(path)}).status_code == 201
        a_visit(base_url, tenant)
        receiver.wait_for("/fine", 1)
        receiver.wait_for("/failing", 2)
        deadline = time.monotonic() + 15
        while True:  # the last attempt is recorded after its answer arrives
            samples = scrape(f"{base_url}/metrics")
            if (value(samples, "footfall_webhook_delivery_attempts_total", outcome="failed")
                    or time.monotonic() > deadline):
                break
            time.sleep(0.1)
    assert value(samples, "footfall_webhook_delivery_attempts_total", outcome="succeeded") == 1
    assert value(samples, "footfall_webhook_delivery_attempts_total", outcome="retrying") == 1
    assert value(samples, "footfall_webhook_delivery_attempts_total", outcome="failed") == 1
    # The outbox is every account's (other tests' deliveries share the database): at least this one.
    assert value(samples, "footfall_webhook_deliveries_failed") >= 1


def test_metrics_port_of_their_own(database_url, tenant):
    port = free_port()
    with running_server(database_url, "--metrics-port", str(port)) as base_url:
        uuid = a_visit(base_url, tenant)
        httpx.get(f"{base_url}{API_PREFIX}/visits/{uuid}", headers=tenant.headers)
        assert httpx.get(f"{base_url}/metrics").status_code == 404  # not on the API's port
        samples = scrape(f"http://127.0.0.1:{port}/metrics")
    assert value(samples, "footfall_http_requests_total", method="GET", route=SHOW, status="200") == 1
    assert value(samples, "footfall_http_requests_total", method="POST", route=f"{API_PREFIX}/visits",
                 status="201") == 1


def test_a_worker_serves_its_delivery_metrics(database_url, tenant, receiver):
    port = free_port()
    with running_server(database_url, "--no-worker", env=FAST) as base_url:
        assert httpx.post(f"{base_url}{API_PREFIX}/webhook-subscriptions", headers=tenant.headers, json={
            "name": "w", "event_type": "visit_created", "url": receiver.url("/worker")}).status_code == 201
        worker = start_worker(database_url, "--metrics-port", str(port), env=FAST)
        try:
            a_visit(base_url, tenant)
            receiver.wait_for("/worker", 1)
            deadline = time.monotonic() + 15
            while True:
                try:
                    samples = scrape(f"http://127.0.0.1:{port}/metrics")
                except httpx.TransportError:
                    samples = {}
                if value(samples, "footfall_webhook_delivery_attempts_total", outcome="succeeded") or \
                        time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        finally:
            worker.terminate()
            worker.communicate(timeout=30)
    assert value(samples, "footfall_webhook_delivery_attempts_total", outcome="succeeded") == 1


@pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus is not installed (apt-get install prometheus)")
def test_a_real_prometheus_scrapes_footfall_under_load(database_url, tenant, tmp_path):
    metrics_port, prometheus_port = free_port(), free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: footfall\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n")
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    query_url = f"http://127.0.0.1:{prometheus_port}/api/v1/query"

    def query(expression: str) -> list:
        answer = httpx.get(query_url, params={"query": expression}, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_until(check, seconds: float):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if result := check():
                    return result
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"not within {seconds} s")

    try:
        with running_server(database_url, "--workers", "2", "--metrics-port", str(metrics_port),
                            env={"FOOTFALL_RATE_LIMIT": "0"}) as base_url, \
                httpx.Client(headers=tenant.headers, timeout=10) as client:
            wait_until(lambda: query('up{job="footfall"} == 1'), 30)
            uuid = a_visit(base_url, tenant)
            sent, ends = 0, time.monotonic() + 6
            while time.monotonic() < ends and sent < 5000:  # load for a few scrapes, bounded
                assert client.get(f"{base_url}{API_PREFIX}/visits/{uuid}").status_code == 200
                sent += 1
            shown = f'footfall_http_requests_total{{route="{SHOW}",status="200"}}'
            # The last scrape has every request: the sum over both processes is exactly what was sent.
            wait_until(lambda: [r for r in query(f"sum({shown})") if float(r["value"][1]) == sent], 15)
            [increase] = query(f"sum(increase({shown}[1m]))")
            assert float(increase["value"][1]) > 0
            series = httpx.get(f"http://127.0.0.1:{prometheus_port}/api/v1/query_range", params={
                "query": f"sum(rate({shown}[5s]))", "start": time.time() - 20, "end": time.time(), "step": 1},
                timeout=10).json()["data"]["result"]
            assert series and max(float(point[1]) for point in series[0]["values"]) > 0  # a graph under load
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
