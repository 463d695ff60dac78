"""The crash test of bench/crash.py at a small size: SIGKILLs lose, duplicate and drop nothing."""

from bench.crash import run_crash


async def test_kills_lose_nothing(database_url):
    # Each writer pauses 50-150 ms between visits, so 40 visits outlast the first kill (at most 1.5 s in).
    report = await run_crash(database_url, clients=4, visits=40, kills=2, seconds=180, seed=7)
    assert report.kills >= 1  # the writers may finish before the second kill
    assert report.visits_expected == 160
    assert (report.lost, report.duplicated, report.events_missing) == (0, 0, 0), report
    assert report.visits_stored == 160
