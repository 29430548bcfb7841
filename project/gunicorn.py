"""gunicorn's settings for `make serve` and the systemd unit (README, "Production deployment").

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
max_requests = 10_000
max_requests_jitter = 1_000
# Each worker loads the application itself, so a reload (SIGHUP) picks up new code.
preload_app = False
errorlog = "-"
# gunicorn's runtime control socket is one path per user: two servers on a machine would clash.
control_socket_disable = True
