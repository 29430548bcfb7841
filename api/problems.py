"""Error bodies as RFC 9457 problem details: one shape for every error the API answers."""

from django.http import HttpRequest, JsonResponse
from ninja import Schema

PROBLEM_CONTENT_TYPE = "application/problem+json"
# The statuses an operation may answer with a problem; every operation documents them.
PROBLEM_STATUSES = frozenset({400, 401, 403, 404, 409, 422, 429})


class FieldError(Schema):
    field: str
    message: str


class Problem(Schema):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] = []


def problem_response(
    request: HttpRequest,
    *,
    status: int,
    title: str,
    detail: str,
    errors: list[dict] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """Answer with a problem; `errors` name each refused field."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "errors": errors or [],
    }
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def answers(status: int, schema) -> dict:
    """An operation's documented responses: its own, and the problems every operation may answer."""
    return {status: schema, PROBLEM_STATUSES: Problem}
