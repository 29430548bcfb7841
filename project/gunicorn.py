"""gunicorn's settings for `make serve` and the systemd unit (docs/operating/deployment.md).

    gunicorn -c project/gunicorn.py project.wsgi

HOST and PORT (127.0.0.1:8000) say where to listen, WEB_CONCURRENCY how many worker
processes (2 per CPU by default). Anything else: GUNICORN_CMD_ARGS, e.g. "--access-logfile -".
"""

import os

from project.env import env_int, env_str

bind = f"{env_str('HOST', '127.0.0.1')}:{env_int('PORT', 8000)}"
workers = env_int("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1))
# Pages take milliseconds; a worker stuck for 30 s is killed and replaced.
timeout = 30
graceful_timeout = 30
# Recycle workers now and then, so a slow leak in any library never grows without bound.
# Not often: a new worker costs about a second of CPU (Django, the templates, the
# time-zone list) and serves slowly until warm. At 10,000 requests, one-click floods of
# 1,000 a second restarted all four workers within the same few seconds, every 40 s, and
# doubled the p99 latency (bench/web.py).
max_requests = 100_000
max_requests_jitter = 20_000
# Each worker loads the application itself, so a reload (SIGHUP) picks up new code.
preload_app = False
errorlog = "-"
# gunicorn's runtime control socket is one path per user: two servers on a machine would clash.
control_socket_disable = True
