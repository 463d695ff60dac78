"""The console's screenshots in docs/images: `footfall demo` on a fresh SQLite file, `footfall serve`,
and Debian's chromium driven by Playwright (pip install -e '.[test]'; apt-get install chromium).

    python docs/screenshots.py
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from footfall.testing.serving import running_server

IMAGES = Path(__file__).resolve().parent / "images"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{folder}/demo.db"
        demo = json.loads(subprocess.run([sys.executable, "-m", "footfall", "demo", "--database-url", database_url],
                                         capture_output=True, text=True, check=True).stdout)
        # The server as a newcomer runs it: the demo's deliveries have failed already (it tried them).
        with running_server(database_url) as base_url, sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base_url}/sign-in")
            page.fill("#token", demo["token"])
            page.click("form[action='/sign-in'] button")
            page.goto(f"{base_url}/?days=90&split=shop")
            page.wait_for_function("document.getElementById('hours-chart').chart !== undefined")
            page.screenshot(path=IMAGES / "console-overview.png", full_page=True)
            page.goto(f"{base_url}/webhooks")
            page.click("#subscriptions-table >> text=Back office")
            page.screenshot(path=IMAGES / "console-webhooks.png", full_page=True)
            page.goto(f"{base_url}/rules")
            page.screenshot(path=IMAGES / "console-rules.png", full_page=True)
            page.goto(f"{base_url}/audiences?visit_count%5Bgte%5D=10&sort=-visit_count")
            page.screenshot(path=IMAGES / "console-audiences.png", full_page=True)
            browser.close()
    print(f"wrote {IMAGES}/console-overview.png, console-webhooks.png, console-rules.png and console-audiences.png")


if __name__ == "__main__":
    main()
