"""Clients generated from a live server's /openapi.json drive that server, as an integrator's would:
openapi-typescript's types with openapi-fetch (type-checked with `tsc --strict`, run with node) and
openapi-python-client's package; and redocly's recommended rules find nothing in the document.

The tools are pinned in tests/generated (package-lock.json for npm's, requirements.txt for the
Python generator, which needs an httpx older than Footfall's and so gets a virtual environment of its
own) and installed once into a cache directory named by a hash of those pins: FOOTFALL_TEST_TOOLS_CACHE,
or footfall-tests under XDG_CACHE_HOME (~/.cache). To move a pin: edit package.json and run
`npm install --package-lock-only` in tests/generated; or install the new openapi-python-client into a
fresh virtual environment and write its `pip freeze` to requirements.txt."""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from footfall.testing.serving import running_server
from tests.conftest import make_tenant

GENERATED = Path(__file__).parent / "generated"
# Neither redocly's usage reports nor its check for a newer release: the run stays on this machine.
TOOL_ENV = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1",
            "npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Runs a tool; its output when it succeeds, an assertion with all it said when it fails."""
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, env={**os.environ, **(env or {})},
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))} exited {result.returncode}:\n" \
                                   f"{result.stdout}\n{result.stderr}"
    return result.stdout


def _cache() -> Path:
    given = os.environ.get("FOOTFALL_TEST_TOOLS_CACHE")
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "footfall-tests"


def _installed(name: str, pins: list[Path], install: Callable[[Path], None], salt: str = "") -> Path:
    """The directory `install` filled for these pins: made once, then reused. A lock keeps two test runs
    from installing into one directory at once; a directory whose install did not finish is made again."""
    digest = hashlib.sha256(salt.encode())
    for pin in pins:
        digest.update(pin.read_bytes())
    directory = _cache() / f"{name}-{digest.hexdigest()[:16]}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / ".installed").exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            install(directory)
            (directory / ".installed").touch()
    return directory


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """node_modules holding the pinned openapi-typescript, openapi-fetch, typescript and @redocly/cli."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (the generated TypeScript client and redocly need them)")
    pins = [GENERATED / "package.json", GENERATED / "package-lock.json"]

    def install(directory: Path) -> None:
        for pin in pins:
            shutil.copy(pin, directory)
        # No package of the lock runs install scripts; --ignore-scripts keeps it so.
        _run(["npm", "ci", "--ignore-scripts"], cwd=directory, env=TOOL_ENV, timeout=600)

    return _installed("npm", pins, install) / "node_modules"


@pytest.fixture(scope="session")
def python_generator() -> Path:
    """The python of a virtual environment holding the pinned openapi-python-client."""
    requirements = GENERATED / "requirements.txt"

    def install(directory: Path) -> None:
        venv.create(directory, with_pip=True)
        _run([directory / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "-r", requirements], cwd=directory, timeout=600)

    return _installed("python", [requirements], install, salt=sys.version) / "bin" / "python"


@pytest.fixture(scope="module")
async def served(app, database_url) -> AsyncIterator[tuple[str, str, dict]]:
    """A live `footfall serve` (with its rate limit on, as deployed), a new account's token, and the
    server's /openapi.json."""
    tenant = await make_tenant(app)
    with running_server(database_url, "--no-worker") as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            document = (await client.get("/openapi.json")).json()
        yield base_url, tenant.token, document


def _digest(document: dict) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]


@pytest.fixture(scope="session")
def typescript_program(npm_tools, tmp_path_factory) -> Callable[[dict], Path]:
    """drive.ts with the types openapi-typescript makes from a document, type-checked with `tsc --strict`
    and compiled: the directory to run node in. Made once a document (the backends serve the same)."""
    made: dict[str, Path] = {}

    def program(document: dict) -> Path:
        key = _digest(document)
        if key not in made:
            directory = tmp_path_factory.mktemp(f"typescript-{key}")
            (directory / "openapi.json").write_text(json.dumps(document))
            (directory / "node_modules").symlink_to(npm_tools)
            (directory / "package.json").write_text('{"private": true, "type": "module"}\n')
            shutil.copy(GENERATED / "drive.ts", directory)
            shutil.copy(GENERATED / "tsconfig.json", directory)
            tools = npm_tools / ".bin"
            _run([tools / "openapi-typescript", "openapi.json", "--output", "schema.ts"], cwd=directory, env=TOOL_ENV)
            _run([tools / "tsc", "--project", "tsconfig.json", "--strict"], cwd=directory)
            made[key] = directory
        return made[key]

    return program


@pytest.fixture(scope="session")
def python_client(python_generator, tmp_path_factory) -> Callable[[dict], Path]:
    """The directory holding the package footfall_api, which openapi-python-client makes from a
    document; made once a document."""
    made: dict[str, Path] = {}

    def client(document: dict) -> Path:
        key = _digest(document)
        if key not in made:
            directory = tmp_path_factory.mktemp(f"python-{key}")
            (directory / "openapi.json").write_text(json.dumps(document))
            (directory / "generator.yaml").write_text("post_hooks: []\n")  # no formatting: the client is only run
            said = _run([python_generator, "-m", "openapi_python_client", "generate", "--path", "openapi.json",
                         "--meta", "none", "--output-path", "footfall_api", "--config", "generator.yaml"],
                        cwd=directory)
            # What it cannot read in the document it leaves out of the client, with a warning.
            assert "Warning" not in said, said
            made[key] = directory
        return made[key]

    return client


def test_a_typescript_client_made_with_openapi_typescript_drives_the_server(served, typescript_program):
    base_url, token, document = served
    directory = typescript_program(document)
    assert _run(["node", "build/drive.js", base_url, token], cwd=directory).strip() == "ok"


def test_a_python_client_made_with_openapi_python_client_drives_the_server(served, python_generator, python_client):
    base_url, token, document = served
    directory = python_client(document)
    answer = _run([python_generator, GENERATED / "drive.py", base_url, token], cwd=directory,
                  env={"PYTHONPATH": str(directory)})
    assert answer.strip() == "ok"


def test_redocly_recommended_rules_find_nothing(served, npm_tools, tmp_path):
    _, _, document = served
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    # It exits 0 on warnings: the totals say.
    report = json.loads(_run([npm_tools / ".bin" / "redocly", "lint", "--config", GENERATED / "redocly.yaml",
                              "--format", "json", "openapi.json"], cwd=tmp_path, env=TOOL_ENV))
    found = [f"{problem['severity']} {problem['ruleId']} at {problem['location'][0]['pointer']}: "
             f"{problem['message']}" for problem in report["problems"]]
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, "\n".join(found)
