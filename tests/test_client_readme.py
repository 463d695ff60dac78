"""clients/python/README.md runs as printed: every ```python block, in order, against a real `footfall
serve` with `footfall demo`'s data; the only change made is the demo's token for the `ffpat_...` it
stands for, and the server's address for http://127.0.0.1:8000."""

import contextlib
import io
import re
from pathlib import Path

import httpx

from footfall.app import API_PREFIX
from footfall.testing.receiver import Receiver
from footfall.testing.serving import footfall_json, running_server

README = Path(__file__).resolve().parent.parent / "clients" / "python" / "README.md"
SERVER_ENV = {"FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS": "1", "FOOTFALL_WEBHOOK_POLL_INTERVAL": "0.1",
              "FOOTFALL_RATE_LIMIT": "0"}


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)


def run_block(block: str, base_url: str, token: str) -> tuple[dict, str]:
    """The block run as a script of its own: its names, and what it printed."""
    source = block.replace("http://127.0.0.1:8000", base_url).replace('"ffpat_..."', repr(token))
    names: dict = {"__name__": "__readme__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, str(README), "exec"), names)
    return names, printed.getvalue()


def test_every_python_block_of_the_clients_readme_runs_as_printed(fresh_database_url):
    blocks = python_blocks()
    assert len(blocks) == 3, "a block was added or removed: check what this test does with each"
    demo = footfall_json("demo", database_url=fresh_database_url)
    with running_server(fresh_database_url, env=SERVER_ENV) as base_url, Receiver() as receiver, httpx.Client(
        base_url=f"{base_url}{API_PREFIX}", headers={"Authorization": f"Bearer {demo['token']}"}
    ) as api:
        # A first call: a visit made, updated, and listed.
        _, printed = run_block(blocks[0], base_url, demo["token"])
        made = api.get("/visits", params={"external_id": "till-3-000001"}).json()["data"]
        assert len(made) == 1 and made[0]["ends_at"] is not None and made[0]["source"] == "Kiosk"
        assert printed.startswith("[datetime.datetime(") and printed.count("datetime.datetime(") == 10
        run_block(blocks[0], base_url, demo["token"])  # again: the external_id makes it a safe retry
        assert api.get("/visits", params={"external_id": "till-3-000001"}).json()["meta"]["total"] == 1

        # Webhooks: the handler given a real delivery, and the same delivery tampered with.
        names, _ = run_block(blocks[1], base_url, demo["token"])
        subscribed = api.post("/webhook-subscriptions", json={
            "name": "README", "event_type": "visit_created", "url": receiver.url("/readme")})
        assert subscribed.status_code == 201, subscribed.text
        secret = subscribed.json()["data"]["secret"]
        created = api.post("/visits", json={"contact_uuid": demo["contact_uuid"], "shop_uuid": demo["shop_uuid"]})
        delivery = receiver.wait_for("/readme", 1)[0]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert names["receive"](delivery.headers, delivery.body, secret) == 200
            assert names["receive"](delivery.headers, delivery.body + b" ", secret) == 400
        assert printed.getvalue() == f"a visit by {created.json()['data']['contact']['uuid']}\n"

        # Visit rules and audiences: a rule made and made inactive, SpongeBob's progress with each rule,
        # and the demo's lapsed regular found, listed and exported.
        _, printed = run_block(blocks[2], base_url, demo["token"])
        made = [rule for rule in api.get("/visit-rules").json()["data"] if rule["name"].startswith("Every 5th")]
        assert [(rule["every"], rule["status"]) for rule in made] == [(5, "INACTIVE")]
        lines = printed.splitlines()
        assert {line.rsplit(" ", 2)[0] for line in lines[:3]} == {
            "Every 5th visit: a free pastry", "Every 10th visit: a free coffee", "Win back a regular"}
        assert lines[3:5] == ["['larry@bikinibottom.sea']", "uuid,email,visit_count,first_visit_at,last_visit_at"]
        assert len(lines) == 6 and lines[5].startswith(f"{demo['lapsed_contact_uuid']},larry@bikinibottom.sea,")
