"""Idempotency-Key on POST: the first answer is kept and replayed to every retry with the same key.

Per token, a key stands for one request (method, path, query and body): sent again, it gets
the stored answer with `Idempotent-Replayed: true` and nothing runs twice; sent with another
request, 422; sent while the first call still runs, 409. Answers that say "try again"
(401, 403, 429 and 5xx) are not kept, so the retry runs. A call left unfinished (its process
died) is run again by a retry after STALE. Keys are forgotten after API_IDEMPOTENCY_HOURS.
"""

import datetime
import hashlib

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from api.conf import api_settings
from api.exceptions import NotAuthenticated
from api.models import IdempotentAnswer
from api.problems import problem_response
from api.tokens import request_token

HEADER = "Idempotency-Key"
STALE = datetime.timedelta(minutes=5)
RETRY_STATUSES = {401, 403, 429}


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256(f"{request.method} {request.get_full_path()}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def _problem(request: HttpRequest, status: int, title: str, detail: str) -> HttpResponse:
    return problem_response(request, status=status, title=title, detail=detail)


def idempotent_call(request: HttpRequest, get_response, *, now: datetime.datetime) -> HttpResponse:
    """Answer a POST that carries an Idempotency-Key: run it once, replay its answer after."""
    key = request.headers[HEADER]
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        return _problem(request, 422, "Invalid request", f"{HEADER} must be 1 to 255 printable ASCII characters.")
    try:
        token = request_token(request, now=now)
    except NotAuthenticated:
        return get_response(request)  # the endpoint answers 401 as for any call
    fingerprint = _fingerprint(request)
    IdempotentAnswer.objects.filter(
        token=token, created_at__lt=now - datetime.timedelta(hours=api_settings.IDEMPOTENCY_HOURS)
    ).delete()
    try:
        with transaction.atomic():
            answer, created = IdempotentAnswer.objects.get_or_create(
                token=token, key=key, defaults={"fingerprint": fingerprint, "created_at": now}
            )
    except IntegrityError:  # another call with this key inserted it first
        return _problem(request, 409, "Conflict", f"A request with this {HEADER} is still being processed.")
    if not created:
        if answer.fingerprint != fingerprint:
            return _problem(request, 422, "Invalid request", f"This {HEADER} was used for another request.")
        if answer.status is not None:
            replay = HttpResponse(bytes(answer.body), status=answer.status, content_type=answer.content_type)
            replay["Idempotent-Replayed"] = "true"
            return replay
        taken = IdempotentAnswer.objects.filter(pk=answer.pk, status=None, created_at__lt=now - STALE).update(
            created_at=now
        )
        if not taken:
            return _problem(request, 409, "Conflict", f"A request with this {HEADER} is still being processed.")
    response = get_response(request)
    if response.status_code >= 500 or response.status_code in RETRY_STATUSES:
        IdempotentAnswer.objects.filter(pk=answer.pk).delete()
    else:
        IdempotentAnswer.objects.filter(pk=answer.pk).update(
            status=response.status_code, content_type=response.get("Content-Type", ""), body=response.content
        )
    return response
