"""Send-time occurrences in the reader's time zone, across DST changes (newsletters.schedules)."""

import datetime
from zoneinfo import ZoneInfo

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


def test_fortnightly_is_every_other_week_on_the_newsletters_weekday():
    # 5 June 2026 is a Friday in an even week counted from Monday 1 January 2024.
    kwargs = {"frequency": "fortnightly", "send_time": datetime.time(9, 0), "weekday": 4, "tz_name": "UTC"}
    assert occurrence_next(after=at(2026, 6, 1), **kwargs) == at(2026, 6, 5, 9, 0)
    assert occurrence_next(after=at(2026, 6, 5, 9, 0), **kwargs) == at(2026, 6, 19, 9, 0)
    assert occurrence_last(at=at(2026, 6, 19, 8, 59), **kwargs) == at(2026, 6, 5, 9, 0)
    # Across a year end (2026 has 53 ISO weeks) the beat holds: every 14 days.
    moment, sends = at(2026, 12, 1), []
    for _ in range(6):
        moment = occurrence_next(after=moment, **kwargs)
        sends.append(moment)
    assert {later - earlier for earlier, later in zip(sends, sends[1:], strict=False)} == {datetime.timedelta(days=14)}


def test_monthly_is_on_the_newsletters_day_of_the_month_or_its_first_weekday():
    kwargs = {"frequency": "monthly", "send_time": datetime.time(9, 0), "weekday": 0, "tz_name": "UTC"}
    assert occurrence_next(after=at(2026, 6, 15, 9, 0), monthly_day=15, **kwargs) == at(2026, 7, 15, 9, 0)
    assert occurrence_last(at=at(2026, 6, 14), monthly_day=15, **kwargs) == at(2026, 5, 15, 9, 0)
    assert occurrence_next(after=at(2026, 1, 31), monthly_day=28, **kwargs) == at(2026, 2, 28, 9, 0)
    # Day 0: the first Monday of the month (1 June 2026, 6 July 2026).
    assert occurrence_next(after=at(2026, 5, 31), monthly_day=0, **kwargs) == at(2026, 6, 1, 9, 0)
    assert occurrence_next(after=at(2026, 6, 1, 9, 0), monthly_day=0, **kwargs) == at(2026, 7, 6, 9, 0)


def test_fortnightly_and_monthly_stay_at_local_time_across_dst_changes():
    paris = {"send_time": datetime.time(8, 0), "weekday": 6, "tz_name": "Europe/Paris"}
    # Monthly on the 1st: 08:00 CET in March is 07:00 UTC, 08:00 CEST in April is 06:00 UTC.
    assert occurrence_next(frequency="monthly", after=at(2026, 2, 1, 7, 0), **paris) == at(2026, 3, 1, 7, 0)
    assert occurrence_next(frequency="monthly", after=at(2026, 3, 1, 7, 0), **paris) == at(2026, 4, 1, 6, 0)
    # Fortnightly on Sundays: 15 March (CET), then 29 March (CEST: the clocks went forward that night).
    assert occurrence_next(frequency="fortnightly", after=at(2026, 3, 14), **paris) == at(2026, 3, 15, 7, 0)
    assert occurrence_next(frequency="fortnightly", after=at(2026, 3, 15, 7, 0), **paris) == at(2026, 3, 29, 6, 0)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
@pytest.mark.parametrize("frequency", ["fortnightly", "monthly"])
def test_fortnightly_and_monthly_last_and_next_agree_over_two_years(tz, frequency):
    kwargs = {"frequency": frequency, "send_time": datetime.time(8, 0), "weekday": 2, "tz_name": tz, "monthly_day": 0}
    moment, days = at(2026, 1, 1, 3, 17), []
    for _ in range(52 if frequency == "fortnightly" else 24):
        nxt = occurrence_next(after=moment, **kwargs)
        assert nxt > moment and occurrence_last(at=nxt, **kwargs) == nxt
        if days:  # nothing between two sends
            assert occurrence_last(at=nxt - datetime.timedelta(seconds=1), **kwargs) == days[-1]
        days.append(nxt)
        moment = nxt
    local = [day.astimezone(ZoneInfo(tz)) for day in days]
    assert all(day.weekday() == 2 and (day.hour, day.minute) == (8, 0) for day in local)
    if frequency == "monthly":
        assert [day.month for day in local] == [m % 12 + 1 for m in range(24)] and all(day.day <= 7 for day in local)


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
