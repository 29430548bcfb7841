"""Send-time occurrences in the reader's time zone, across DST changes (newsletters.schedules)."""

import datetime

import pytest

from newsletters.schedules import occurrence_last, occurrence_next

UTC = datetime.UTC


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def daily(tz: str, after: datetime.datetime, send=datetime.time(8, 0)) -> datetime.datetime:
    return occurrence_next(frequency="daily", send_time=send, weekday=0, tz_name=tz, after=after)


def test_daily_is_the_local_send_time_in_the_readers_zone():
    assert daily("UTC", at(2026, 6, 1, 7, 59)) == at(2026, 6, 1, 8, 0)
    assert daily("UTC", at(2026, 6, 1, 8, 0)) == at(2026, 6, 2, 8, 0)
    assert daily("Asia/Tokyo", at(2026, 6, 1, 0, 0)) == at(2026, 6, 1, 23, 0)  # 08:00 JST on 2 June
    assert daily("America/Los_Angeles", at(2026, 6, 1, 0, 0)) == at(2026, 6, 1, 15, 0)  # 08:00 PDT


def test_daily_stays_at_local_time_across_dst_changes():
    # Europe/Paris: CET (+1) until 29 March 2026 01:00 UTC, then CEST (+2); back on 25 October.
    assert daily("Europe/Paris", at(2026, 3, 28, 8, 0)) == at(2026, 3, 29, 6, 0)
    assert daily("Europe/Paris", at(2026, 3, 27, 8, 0)) == at(2026, 3, 28, 7, 0)
    assert daily("Europe/Paris", at(2026, 10, 24, 7, 0)) == at(2026, 10, 25, 7, 0)
    assert daily("Europe/Paris", at(2026, 10, 24, 5, 0)) == at(2026, 10, 24, 6, 0)


def test_send_time_inside_a_dst_gap_or_overlap_happens_once():
    # 02:30 does not exist in Paris on 29 March 2026 and exists twice on 25 October.
    gap = daily("Europe/Paris", at(2026, 3, 28, 12, 0), send=datetime.time(2, 30))
    assert gap == at(2026, 3, 29, 1, 30)  # resolved to 03:30 CEST, the instant after the gap
    assert daily("Europe/Paris", gap, send=datetime.time(2, 30)) == at(2026, 3, 30, 0, 30)
    first = daily("Europe/Paris", at(2026, 10, 24, 12, 0), send=datetime.time(2, 30))
    assert first == at(2026, 10, 25, 0, 30)  # the first 02:30 (CEST)
    assert daily("Europe/Paris", first, send=datetime.time(2, 30)) == at(2026, 10, 26, 1, 30)


def test_weekly_is_on_the_newsletters_weekday():
    # 1 June 2026 is a Monday; weekday 4 is Friday.
    kwargs = {"frequency": "weekly", "send_time": datetime.time(9, 0), "weekday": 4, "tz_name": "UTC"}
    assert occurrence_next(after=at(2026, 6, 1), **kwargs) == at(2026, 6, 5, 9, 0)
    assert occurrence_next(after=at(2026, 6, 5, 9, 0), **kwargs) == at(2026, 6, 12, 9, 0)
    assert occurrence_last(at=at(2026, 6, 5, 8, 59), **kwargs) == at(2026, 5, 29, 9, 0)
    assert occurrence_last(at=at(2026, 6, 5, 9, 0), **kwargs) == at(2026, 6, 5, 9, 0)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_last_and_next_are_consistent_over_a_year(tz):
    # Walking occurrence_next from any instant gives exactly one send per local day, and
    # occurrence_last of each one is itself.
    moment = at(2026, 1, 1, 3, 17)
    seen_days = set()
    for _ in range(366):
        nxt = daily(tz, moment)
        assert nxt > moment
        assert occurrence_last(frequency="daily", send_time=datetime.time(8, 0), weekday=0, tz_name=tz, at=nxt) == nxt
        from zoneinfo import ZoneInfo

        local_day = nxt.astimezone(ZoneInfo(tz)).date()
        assert local_day not in seen_days
        seen_days.add(local_day)
        moment = nxt
    assert len(seen_days) == 366
