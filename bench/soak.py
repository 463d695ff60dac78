"""The adversarial suites at a size CI has no time for: every kind of write at once for longer
(tests/test_concurrency.py) and many more hostile requests (tests/test_hostile_input.py), on SQLite
and, with FOOTFALL_TEST_DATABASE_URL set, PostgreSQL. Loopback only, bounded by the numbers given.

    .venv/bin/python bench/soak.py --seconds 60 --examples 5000
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="of concurrent writing (CI: 3)")
    parser.add_argument("--examples", type=int, default=5000, help="hostile requests drawn (CI: 300)")
    options = parser.parse_args()
    env = {**os.environ, "FOOTFALL_SOAK_SECONDS": str(options.seconds), "FOOTFALL_SOAK_EXAMPLES": str(options.examples)}
    tests = ["tests/test_concurrency.py",
             "tests/test_hostile_input.py::test_hostile_requests_answer_2xx_or_4xx_in_leat_shape"]
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", *tests], cwd=ROOT, env=env))


if __name__ == "__main__":
    main()
