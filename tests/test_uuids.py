"""kit.uuids.new_uuid: version 4 uuids from a supply read in bulk, never handed out twice, by a
process or by a child forked from it (from any of its threads)."""

import os
import threading

import pytest

from footfall.kit.uuids import SUPPLY, new_uuid


def test_new_uuids_are_version_4_and_distinct_across_supplies():
    made = [new_uuid() for _ in range(3 * SUPPLY + 1)]
    assert len(set(made)) == len(made)
    assert {uuid.version for uuid in made} == {4} and {uuid.variant for uuid in made} == {"specified in RFC 4122"}


def _fork_and_read(count: int) -> set[bytes]:
    """The uuids a child forked from this thread hands out first."""
    new_uuid()  # this thread holds a supply
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, b"".join(new_uuid().bytes for _ in range(count)))
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        given = pipe.read()
    return {given[start:start + 16] for start in range(0, len(given), 16)}


@pytest.mark.parametrize("forking_thread", ["the main thread", "another thread"])
def test_a_forked_child_does_not_hand_out_its_parents_uuids(forking_thread):
    new_uuid()  # the main thread holds a supply too
    found: dict[str, set[bytes]] = {}

    def fork_here() -> None:
        found["child"] = _fork_and_read(SUPPLY)
        found["parent"] = {new_uuid().bytes for _ in range(SUPPLY)}

    if forking_thread == "the main thread":
        fork_here()
    else:
        thread = threading.Thread(target=fork_here)
        thread.start()
        thread.join()
    assert len(found["child"]) == SUPPLY and not found["child"] & found["parent"]
