"""`/healthz` for load balancers: 200 when this process can query the database, 503 when it cannot."""

from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

HEALTH_PATH = "/healthz"


def health_response() -> HttpResponse:
    """Run one trivial query on the default database and say whether it answered."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        response = HttpResponse("ok\n", content_type="text/plain")
    except DatabaseError as error:
        response = HttpResponse(
            f"database unavailable: {error.__class__.__name__}\n", content_type="text/plain", status=503
        )
    add_never_cache_headers(response)
    response["Content-Length"] = len(response.content)  # answered before CommonMiddleware, which would set it
    return response


class HealthCheckMiddleware:
    """Answer health checks first: a balancer probes by IP over plain HTTP, which the host check
    (ALLOWED_HOSTS) and the HTTPS redirect would refuse, and it needs no session or CSRF work."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return health_response()
        return self.get_response(request)
