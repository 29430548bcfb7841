"""The API at /api/v1/: its routers, and every error answered as an RFC 9457 problem."""

from http import HTTPStatus

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.parser import Parser

from api.auth import TokenThrottle, retry_after
from api.endpoints import issues, newsletters, returns, subscribers
from api.exceptions import ApiError, TooManyRequests
from api.problems import PROBLEM_CONTENT_TYPE, problem_response
from api.services import invalid_from


class ObjectParser(Parser):
    """Every request body of this API is a JSON object: a list or a bare value is refused (400), not read as {}."""

    def parse_body(self, request: HttpRequest):
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise ValueError("the body is not a JSON object")
        return data


class DigestAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Document error bodies under their real media type, application/problem+json."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    if int(status) >= 400 and "application/json" in response.get("content", {}):
                        response["content"] = {PROBLEM_CONTENT_TYPE: response["content"]["application/json"]}
        return schema


api = DigestAPI(
    title="Digest engine API",
    version="1",
    description="Newsletters, issues, subscribers, bounces and figures. Authenticate with "
    "`Authorization: Bearer dgst_…` (tokens are made in the admin). Errors are RFC 9457 problem details.",
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
    throttle=[TokenThrottle()],
    parser=ObjectParser(),
)
api.add_router("", newsletters.router)
api.add_router("", issues.router)
api.add_router("", subscribers.router)
api.add_router("", returns.router)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, error: ApiError) -> HttpResponse:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyRequests) else {}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return problem_response(
        request, status=error.status, title=error.title, detail=error.detail, errors=error.errors, headers=headers
    )


@api.exception_handler(DjangoValidationError)
def _django_invalid(request: HttpRequest, error: DjangoValidationError) -> HttpResponse:
    return _api_error(request, invalid_from(error))


def _field(location: tuple) -> str:
    """A pydantic error's location as the caller wrote it: without the source, and a body without its parameter."""
    parts = list(location[2:] if location[:1] == ("body",) else location[1:])
    return ".".join(str(part) for part in parts)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    errors = [{"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in error.errors]
    detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
    return problem_response(request, status=422, title="Invalid request", detail=detail, errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return problem_response(
        request,
        status=401,
        title="Not authenticated",
        detail="Send an API token: Authorization: Bearer dgst_… (tokens are made in the admin).",
        headers={"WWW-Authenticate": "Bearer"},
    )


@api.exception_handler(Throttled)
def _throttled(request: HttpRequest, error: Throttled) -> HttpResponse:
    return problem_response(
        request,
        status=429,
        title="Too many requests",
        detail=f"The token {request.auth.name!r} made more calls than its rate allows; retry later.",
        headers={"Retry-After": retry_after(error.wait)},
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return problem_response(request, status=404, title="Not found", detail="Nothing here has that id.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    return problem_response(
        request, status=error.status_code, title=HTTPStatus(error.status_code).phrase, detail=str(error)
    )
