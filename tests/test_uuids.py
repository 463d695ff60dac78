"""kit.uuids.new_uuid: version 4 uuids from a supply read in bulk, never handed out twice, by a
process or by a child forked from it."""

import os

from footfall.kit.uuids import SUPPLY, new_uuid


def test_new_uuids_are_version_4_and_distinct_across_supplies():
    made = [new_uuid() for _ in range(3 * SUPPLY + 1)]
    assert len(set(made)) == len(made)
    assert {uuid.version for uuid in made} == {4} and {uuid.variant for uuid in made} == {"specified in RFC 4122"}


def test_a_forked_child_does_not_hand_out_its_parents_uuids():
    new_uuid()  # the parent holds a supply
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, b"".join(new_uuid().bytes for _ in range(SUPPLY)))
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        given = pipe.read()
    childs = {given[start:start + 16] for start in range(0, len(given), 16)}
    parents = {new_uuid().bytes for _ in range(SUPPLY)}
    assert len(childs) == SUPPLY and not childs & parents
