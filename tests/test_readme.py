"""The README's examples run as printed on the demo data, and each one shows some of it.

Every ```sh block from "The API" to "Retention" runs, in order, in one shell (as a reader pastes them),
against a real `footfall serve` of a fresh `footfall demo`, the server's default settings and all.
Two things differ from a reader's machine: `footfall demo --env` is given the server's address
(--base-url, as the README says to for another port), and `.venv/bin/footfall` is this checkout's.
The blocks that start a server or a webhook listener are left out: tests/webhooks/test_listen.py runs
that walk-through.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from footfall.testing.serving import footfall, running_server

README = Path(__file__).resolve().parent.parent / "README.md"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Variables the examples set from an answer, each a uuid.
ASSIGNED = ("A", "P", "D", "R")


def examples() -> list[str]:
    """The commands of the README's examples, in order, each whole (continued lines and quoted text
    over several lines kept together, as bash reads them); comments left out."""
    text = README.read_text()
    part = text[text.index("\n## The API\n"):text.index("\n## Tests\n")]
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```$", part, re.MULTILINE | re.DOTALL):
        if "footfall serve" in block or "webhooks listen" in block:
            continue
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = f"{pending}\n{line}" if pending else line
            if subprocess.run(["bash", "-n", "-c", pending], capture_output=True).returncode == 0:
                commands.append(pending)
                pending = ""
        assert not pending, f"an example that bash cannot read: {pending}"
    return commands


def shows_something(command: str, out: str, err: str, folder: Path) -> None:
    """What the command printed (or wrote) holds some of the demo's data, or is the answer the README
    says it is."""
    if command.startswith(ASSIGNED) or command.startswith("eval "):
        return  # the variables are checked after the run
    if " -o " in command:
        written = (folder / command.split(" -o ")[1].split()[0]).read_text()
        assert written.count("\n") > 1, written
    elif "footfall visits export" in command:
        assert json.loads(err.strip().splitlines()[-1])["exported"] > 0, err
        assert (folder / "visits.csv").read_text().count("\n") > 1
    elif "footfall visits import" in command:
        summary = json.loads(out)
        assert summary["read"] > 0 and summary["skipped"] == summary["read"], summary  # nothing twice
    elif "footfall visits purge" in command:
        assert json.loads(out)["purged"] > 0, out
    else:
        assert command.startswith("curl "), command
        body = json.loads(out)
        if "127.0.0.1:9000" in command:  # the README says a receiver on this machine is refused here
            assert body["code"] == 1003 and "FOOTFALL_WEBHOOK_ALLOW_PRIVATE_URLS" in body["errors"]["url"][0], body
        elif body == {"data": [], "meta": []}:
            assert "-X DELETE" in command, (command, body)  # Leat's answer to a delete
        elif body == {"data": None, "meta": {}}:
            assert "/contacts/" in command, (command, body)  # Leat's answer to a contact's delete
        else:
            assert "status_code" not in body and body["data"], (command, body)
            if "/visits/stats" in command:
                assert any(bucket["visits"] for bucket in body["data"]), (command, body)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("python3")),
                    reason="the README's examples need curl and python3 on the PATH")
def test_every_example_of_the_readme_shows_something_on_the_demo_data(fresh_database_url, tmp_path):
    commands = examples()
    assert len(commands) > 30 and any("created_at[gte]=$FROM" in command for command in commands)
    footfall("demo", database_url=fresh_database_url)
    tools = tmp_path / ".venv" / "bin"
    tools.mkdir(parents=True)
    (tools / "footfall").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m footfall "$@"\n')
    (tools / "footfall").chmod(0o755)
    for folder in ("out", "err", "rc"):
        (tmp_path / folder).mkdir()
    with running_server(fresh_database_url) as base_url:
        script = []
        for n, command in enumerate(commands):
            command = command.replace("footfall demo --env", f"footfall demo --env --base-url {base_url}")
            script.append(f"{{ {command}\n}} > out/{n} 2> err/{n}; echo $? > rc/{n}")
        script.append("printf '%s\\n' " + " ".join(f'"${{{name}:-}}"' for name in ASSIGNED) + " > assigned")
        # A reader's shell: their PATH, and the database the commands use when given none.
        shell = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "FOOTFALL_DATABASE_URL": fresh_database_url}
        subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, check=True, timeout=600, env=shell)
    for n, command in enumerate(commands):
        out, err = (tmp_path / "out" / str(n)).read_text(), (tmp_path / "err" / str(n)).read_text()
        assert (tmp_path / "rc" / str(n)).read_text().strip() == "0", (command, out, err)
        shows_something(command, out, err, tmp_path)
    assigned = (tmp_path / "assigned").read_text().split()
    assert len(assigned) == len(ASSIGNED) and all(UUID.match(value) for value in assigned), assigned
