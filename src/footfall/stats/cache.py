"""Bucket counts kept between requests, in the process, and brought up to date on the changes feed.

A stats answer over a long period counts every visit in it (1.4 s for a year of 1,000,000 visits),
yet between two requests only a few buckets change: those where visits were created or updated
since, and those where a contact touched then had its first visit before and has it now (a new
visit can take the first place, so the contact is new in another bucket). The feed tells which visits those are, in
order, none skipped (it shows a change only once every older transaction has ended). What it shows
without saying where the visit was before (a deleted visit's tombstone), and what it cannot show (a
visit moved to another start, which moves the account's visit_epoch instead), has an entry counted
again in full."""

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from footfall.stats.repository import BucketCounts

MAX_ENTRIES = 256  # queries kept, least recently used dropped first
MAX_CHANGES = 5000  # more changes than this since an entry was counted: count it again in full


@dataclass
class Entry:
    position: tuple[int, int]  # the feed position the counts include every change up to
    epoch: int
    # By bucket (start, end): its counts per group, or {} for a bucket without visits.
    buckets: dict[tuple[datetime, datetime], dict[Any, BucketCounts]] = field(default_factory=dict)


class StatsCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()

    def get(self, key: tuple) -> Entry | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: tuple, entry: Entry) -> None:
        self.entries[key] = entry
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
