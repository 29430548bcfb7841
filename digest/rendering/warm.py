"""Warm, beside a web process's first request, what its first email preview would find cold.

A new process renders its first digest in seconds: Markdown's extensions are built,
premailer and cssutils imported and the email stylesheet parsed (premailer keeps the parse),
bleach, lxml and the email templates loaded. An editor then waited 5 s for the first
preview. On the first request a thread renders a sample digest, without the database, so
the preview the editor opens a moment later finds all of that ready.
"""

import datetime
import logging
import threading

from django.core.signals import request_started
from django.db.models import Prefetch, prefetch_related_objects

from digest.exceptions import RenderError
from digest.rendering.content import digest_render
from newsletters.models import Attachment, Issue, IssueStatus, Newsletter

logger = logging.getLogger(__name__)

WARM_UID = "digest.rendering.warm"
# What issues hold: a heading, emphasis, code, a link, a list, a quote, a table, an image.
SAMPLE_BODY = """## A heading

A paragraph with *emphasis*, `code` and a [link](https://example.com/).

- one
- two

> A quote.

```
print("a block of code")
```

| a | b |
|---|---|
| 1 | 2 |

![A picture](https://example.com/picture.png)
"""


def rendering_warm() -> None:
    """Render a sample digest of an unsaved newsletter and issue once; touch no database."""
    now = datetime.datetime.now(datetime.UTC)
    newsletter = Newsletter(name="Warm-up", slug="warm-up")
    # pk 0 is never a row; its files are an empty prefetch, which asks no database.
    issue = Issue(
        pk=0,
        newsletter=newsletter,
        title="Warm-up",
        slug="warm-up",
        body=SAMPLE_BODY,
        status=IssueStatus.PUBLISHED,
        publish_at=now,
    )
    prefetch_related_objects([issue], Prefetch("attachments", queryset=Attachment.objects.none()))
    try:
        digest_render(
            newsletter=newsletter, issues=[issue], window_start=now - datetime.timedelta(days=1), window_end=now
        )
    except RenderError as error:  # a project template that needs a real newsletter: the preview says why
        logger.warning("The warm-up digest could not be rendered: %s", error)


def rendering_warm_on_first_request(sender, **kwargs) -> None:
    """Start rendering_warm in a thread on a process's first request (a request_started receiver, once)."""
    if request_started.disconnect(dispatch_uid=WARM_UID):  # False for a request that came at the same instant
        threading.Thread(target=rendering_warm, name="digest-rendering-warm", daemon=True).start()
