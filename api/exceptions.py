"""One exception root for the API: each error is answered as an RFC 9457 problem with its status."""


class ApiError(Exception):
    """Root of the API's errors; carries the HTTP status and the problem's title."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotAuthenticated(ApiError):
    status, title = 401, "Not authenticated"


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class NotFound(ApiError):
    status, title = 404, "Not found"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class Invalid(ApiError, ValueError):
    status, title = 422, "Invalid request"


class TooManyRequests(ApiError):
    status, title = 429, "Too many requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail)
        self.retry_after = retry_after
