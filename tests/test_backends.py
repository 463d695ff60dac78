"""The README's test command runs everything with no settings: with the variables unset, the run starts
a throwaway PostgreSQL and Redis of its own, and its last lines say which backends ran and why."""

import os
import subprocess
import sys

import pytest

from footfall.testing import postgres, redis

# A few quick tests that run on both databases and on Redis.
SELECTION = ["tests/test_limits.py", "-k", "redis or per_token"]


def run_pytest(**env: str | None) -> str:
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("FOOTFALL_TEST_DATABASE_URL", "FOOTFALL_TEST_REDIS_URL")}
    environment.update({key: value for key, value in env.items() if value is not None})
    result = subprocess.run([sys.executable, "-m", "pytest", *SELECTION, "-q", "-p", "no:cacheprovider"],
                            env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout.split("= backends =", 1)[1]


@pytest.mark.skipif(not (postgres.can_make_servers() and redis.can_make_servers()),
                    reason=f"{postgres.NEEDS}; {redis.NEEDS}")
def test_with_no_settings_the_run_starts_its_own_postgresql_and_redis():
    summary = run_pytest()
    assert "PostgreSQL: a throwaway server this run started" in summary
    assert "Redis: a throwaway server this run started" in summary
    assert "tests on postgresql:" in summary and "skipped" not in summary, summary


def test_an_empty_variable_leaves_its_backend_out_and_the_summary_says_so():
    summary = run_pytest(FOOTFALL_TEST_DATABASE_URL="", FOOTFALL_TEST_REDIS_URL="")
    assert "PostgreSQL: not run: FOOTFALL_TEST_DATABASE_URL is set empty" in summary
    assert "Redis: not run: FOOTFALL_TEST_REDIS_URL is set empty" in summary
    assert "tests on postgresql: " in summary and " skipped" in summary.split("tests on postgresql:")[1], summary
