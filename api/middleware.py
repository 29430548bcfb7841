"""Around every call under /api/: the Idempotency-Key, a problem body for unknown paths, one log line."""

import logging
import time

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from api.idempotency import HEADER, idempotent_call
from api.problems import PROBLEM_CONTENT_TYPE, problem_response

logger = logging.getLogger("api")

PREFIX = "/api/"
# Django's own answers, in HTML, that an API caller gets as problems instead (a 500 is still logged by django.request).
TITLES = {404: "Not found", 405: "Method not allowed", 500: "Internal server error"}
DETAILS = {500: "The server failed; the error is logged. Retry later or tell the site's operators."}


class ApiMiddleware:
    """Log each API call with its token's name (the `api` logger); leave other paths alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        started = time.perf_counter()
        if request.method == "POST" and HEADER in request.headers:
            response = idempotent_call(request, self.get_response, now=timezone.now())
        else:
            response = self.get_response(request)
        if response.status_code in TITLES and not response.get("Content-Type", "").startswith(
            ("application/json", PROBLEM_CONTENT_TYPE)
        ):
            status = response.status_code
            allow = response.get("Allow")
            response = problem_response(
                request,
                status=status,
                title=TITLES[status],
                detail=DETAILS.get(status, f"{request.method} {request.path} is not in the API."),
            )
            if allow:
                response["Allow"] = allow
        token = getattr(request, "api_token", None)
        logger.info(
            "%s %s %s %.1fms token=%s",
            request.method,
            request.get_full_path(),
            response.status_code,
            (time.perf_counter() - started) * 1000,
            token.name if token else "-",
        )
        return response
