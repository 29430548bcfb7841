"""Scheduling by cron: the schedule parser, run_scheduler's loop, the cron job, and the system checks."""

import datetime
import logging
import stat

import pytest
from django.core import mail
from django.core.management import call_command

from digest.checks import check_crontab, check_settings
from digest.cron import scheduler_loop, send_digests_job
from digest.crontab import CronSchedule, job_hash
from tests.digest.conftest import at


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", at(2026, 6, 1, 10, 3, 30), at(2026, 6, 1, 10, 5)),
        ("*/5 * * * *", at(2026, 6, 1, 10, 5), at(2026, 6, 1, 10, 10)),
        ("0 8 * * 1", at(2026, 6, 2, 9, 0), at(2026, 6, 8, 8, 0)),  # Mondays
        ("30 6 1,15 * *", at(2026, 6, 2), at(2026, 6, 15, 6, 30)),
        ("0 0 * * 7", at(2026, 6, 1), at(2026, 6, 7, 0, 0)),  # 7 is Sunday too
        ("15-17/2 * * * *", at(2026, 6, 1, 10, 15), at(2026, 6, 1, 10, 17)),
        ("0 8 1 * mon", at(2026, 6, 1, 9, 0), at(2026, 6, 8, 8, 0)),  # both restricted: either matches
        ("@daily", at(2026, 6, 1, 10, 3), at(2026, 6, 2, 0, 0)),
        ("0 9 * jun-aug sat", at(2026, 6, 1), at(2026, 6, 6, 9, 0)),  # names
    ],
)
def test_cron_schedule_next_run(expression, after, expected):
    assert CronSchedule.parse(expression).next_after(after) == expected


@pytest.mark.parametrize(
    "expression",
    ["* * * *", "61 * * * *", "*/0 * * * *", "a * * * *", "5-1 * * * *", "* * * * * 30", "0 0 31 2 *", "@sometimes"],
)
def test_bad_cron_schedules_are_refused(expression):
    with pytest.raises(ValueError):
        CronSchedule.parse(expression)


def test_scheduler_loop_fires_jobs_on_schedule_with_a_virtual_clock():
    moment = [at(2026, 6, 1, 10, 3)]
    fired = []

    def sleep(seconds):
        moment[0] += datetime.timedelta(seconds=seconds)

    jobs = [
        (CronSchedule.parse("*/5 * * * *"), lambda: fired.append(("five", moment[0]))),
        (CronSchedule.parse("*/10 * * * *"), lambda: fired.append(("ten", moment[0]))),
    ]
    scheduler_loop(jobs=jobs, clock=lambda: moment[0], sleep=sleep, iterations=3)
    assert fired == [
        ("five", at(2026, 6, 1, 10, 5)),
        ("five", at(2026, 6, 1, 10, 10)),
        ("ten", at(2026, 6, 1, 10, 10)),
        ("five", at(2026, 6, 1, 10, 15)),
    ]


def test_a_failing_job_is_logged_and_the_loop_goes_on(caplog):
    moment = [at(2026, 6, 1, 10, 0)]
    calls = []

    def boom():
        calls.append(1)
        raise RuntimeError("database is down")

    def sleep(seconds):
        moment[0] += datetime.timedelta(seconds=seconds)

    with caplog.at_level(logging.ERROR, logger="digest.cron"):
        scheduler_loop(
            jobs=[(CronSchedule.parse("* * * * *"), boom)], clock=lambda: moment[0], sleep=sleep, iterations=2
        )
    assert len(calls) == 2
    assert "database is down" in caplog.text


@pytest.mark.django_db
def test_cron_job_logs_its_summary(world, caplog):
    world.subscribe("ada@example.com", frequency="immediate", since=at(2020, 1, 1))
    world.publish("Issue a", at(2020, 1, 2))
    with caplog.at_level(logging.INFO, logger="digest.cron"):
        send_digests_job()
    assert "1 due, 1 groups rendered, 1 sent" in caplog.text
    assert len(world.smtp.received) == 1


@pytest.mark.django_db
def test_cron_job_failure_is_logged_and_mailed_to_admins(settings, caplog):
    settings.ADMINS = ["ops@example.com"]
    settings.DIGEST_BATCH_SIZE = 0  # invalid: the run refuses to start
    with caplog.at_level(logging.ERROR, logger="digest.cron"), pytest.raises(Exception, match="DIGEST_BATCH_SIZE"):
        send_digests_job()
    assert "Digest run at" in caplog.text and "DIGEST_BATCH_SIZE" in caplog.text
    assert [m.subject for m in mail.outbox] == ["[Django] Digest run failed"]


def test_settings_check_names_the_bad_setting(settings):
    settings.DIGEST_RETRY_BACKOFF = "soon"
    settings.CRONJOBS = [("*/5 * * *", "digest.cron.send_digests_job")]
    messages = [error.msg for error in check_settings(None)]
    assert any("DIGEST_RETRY_BACKOFF must be an integer" in m for m in messages)
    assert any("CRONJOBS schedule" in m for m in messages)
    settings.DIGEST_RETRY_BACKOFF = 60
    settings.DIGEST_MAILER = "bulk"
    assert any("DIGEST_MAILER: 'bulk' is not an alias in MAILERS" in e.msg for e in check_settings(None))


@pytest.fixture
def fake_crontab(tmp_path, settings):
    """A stand-in for the crontab program that keeps the table in a file (never the machine's)."""
    table = tmp_path / "crontab.txt"
    table.write_text("")
    program = tmp_path / "crontab"
    program.write_text(f'#!/bin/sh\nif [ "$1" = "-l" ]; then cat {table}; else cp "$1" {table}; fi\n')
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    settings.CRONTAB_EXECUTABLE = str(program)
    settings.DEBUG = False
    return table


def test_check_warns_when_the_crontab_program_is_missing(settings, tmp_path):
    settings.DEBUG = False
    settings.CRONTAB_EXECUTABLE = str(tmp_path / "no-such-crontab")
    assert [w.id for w in check_crontab(None)] == ["digest.W001"]
    settings.DEBUG = True
    assert check_crontab(None) == []


def test_check_follows_crontab_add_and_stale_entries(settings, fake_crontab, capsys):
    assert [w.id for w in check_crontab(None)] == ["digest.W002"]  # not installed
    call_command("crontab", "add")
    table = fake_crontab.read_text()
    assert "crontab run " + job_hash(settings.CRONJOBS[0]) in table
    assert settings.CRONJOBS[0][0] in table
    assert check_crontab(None) == []
    settings.CRONJOBS = [("*/10 * * * *", *settings.CRONJOBS[0][1:])]
    warning = check_crontab(None)
    assert [w.id for w in warning] == ["digest.W003"]  # the schedule changed since `add`
    # django-crontab crashes naming a stale job at the default verbosity; the hint avoids that.
    with pytest.raises(RuntimeError, match="out of sync"):
        call_command("crontab", "add")
    assert "--verbosity 0" in warning[0].hint
    call_command("crontab", "add", verbosity=0)
    assert check_crontab(None) == []
    assert "*/10 * * * *" in fake_crontab.read_text() and "*/5 * * * *" not in fake_crontab.read_text()


def test_check_wants_https_site_url_in_production(settings):
    from digest.checks import check_site_url

    settings.DEBUG = False
    settings.SITE_URL = "http://news.example.com"
    assert [w.id for w in check_site_url(None)] == ["digest.W004"]
    settings.SITE_URL = "https://news.example.com"
    assert check_site_url(None) == []
