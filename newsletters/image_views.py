"""The media library's images as the site serves them: cached for ever, since a name changes with its bytes."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from newsletters.models import Image

CACHE_SECONDS = 365 * 24 * 3600


@require_safe
def image(request, slug: str, name: str):
    """Serve one library image from the storage (local or S3-compatible), with long cache headers."""
    row = Image.objects.filter(file=f"images/{slug}/{name}").only("file", "content_type").first()
    if row is None:
        raise Http404("No such image.")
    try:
        handle = default_storage.open(row.file.name, "rb")
    except FileNotFoundError as error:
        raise Http404("The image's file is missing.") from error
    response = FileResponse(handle, content_type=row.content_type)
    patch_cache_control(response, public=True, max_age=CACHE_SECONDS, immutable=True)
    response.headers["Content-Disposition"] = "inline"
    return response
