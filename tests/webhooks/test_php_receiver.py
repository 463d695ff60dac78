"""A receiver written to Leat's webhook guide, in PHP (Debian's php-cli): it decodes the payload,
re-encodes it with json_encode and checks hash_hmac('sha256', json_encode($payload), $secret) against
the Signature header. Footfall's bodies are written as json_encode writes them, so it agrees."""

import json
import os
import shutil
import subprocess
import time

import httpx
import pytest

from footfall.testing.serving import free_port
from tests.webhooks.test_delivery import create_visit, deliveries, drain, subscribe, worker_for

PHP = shutil.which("php")
pytestmark = pytest.mark.skipif(PHP is None, reason="php is not installed (.ci/run installs Debian's php-cli)")

# Leat's recipe, over the re-encoded payload; and, as a receiver may do instead, over the raw body.
RECEIVER = r"""<?php
if ($_SERVER['REQUEST_METHOD'] !== 'POST') { http_response_code(204); return; }
$raw = file_get_contents('php://input');
$payload = json_decode($raw, true);
$secret = getenv('LEAT_SECRET');
$given = $_SERVER['HTTP_SIGNATURE'] ?? '';
$reencoded = hash_equals(hash_hmac('sha256', json_encode($payload), $secret), $given);
$as_sent = hash_equals(hash_hmac('sha256', $raw, $secret), $given);
$line = json_encode([$reencoded, $as_sent, $payload['data']['external_id'], $payload['data']['source']]);
file_put_contents(getenv('LEAT_LOG'), $line . "\n", FILE_APPEND | LOCK_EX);
http_response_code($reencoded && $as_sent ? 200 : 401);
"""

TEXTS = ['web/app', 'Café «Kiosk»', 'emoji 🦀🍔', 'quotes "double" \'single\'', 'back\\slash', 'tab\there', 'Ω/≈ü€']


@pytest.fixture
def php_receiver(tmp_path):
    script, log = tmp_path / "receiver.php", tmp_path / "received.log"
    script.write_text(RECEIVER)
    port = free_port()
    env = {**os.environ, "LEAT_SECRET": "a secret of the account's own", "LEAT_LOG": str(log)}
    process = subprocess.Popen([PHP, "-S", f"127.0.0.1:{port}", str(script)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/hooks/leat", env["LEAT_SECRET"], log
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_receiver_written_to_leats_guide_accepts_every_delivery(app, client, tenant, php_receiver):
    url, secret, log = php_receiver
    subscription = await subscribe(client, tenant, url, secret=secret)
    for n, text in enumerate(TEXTS):
        await create_visit(client, tenant, external_id=f"php/{n}/{text}", source=text)
    worker = worker_for(app)
    await drain(worker, rounds=len(TEXTS) + 2)
    await worker.close()
    received = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
    assert [(source, reencoded, as_sent) for reencoded, as_sent, _, source in received] == [
        (text, True, True) for text in TEXTS
    ]
    assert {delivery["state"] for delivery in await deliveries(client, tenant, subscription)} == {"succeeded"}
