"""The media library in the admin: a list of each newsletter's images, an upload form, and the
JSON the issue editor calls to upload (button or drag and drop) and to insert an image."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.template.defaultfilters import filesizeformat
from django.urls import path
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from newsletters.images import (
    ImageRefused,
    image_alt_clean,
    image_markdown,
    image_prepare,
    image_read,
    image_store,
    image_url,
)
from newsletters.models import Image, Newsletter

LIBRARY_SIZE = 60


class ImageUploadForm(forms.ModelForm):
    upload = forms.FileField(
        label="Image",
        help_text="JPEG, PNG, GIF or WebP. Drawn at most 1200 px wide (twice the email's column), metadata removed.",
    )

    class Meta:
        model = Image
        fields = ["newsletter", "alt"]

    def clean_alt(self):
        try:
            return image_alt_clean(self.cleaned_data["alt"])
        except ImageRefused as error:
            raise forms.ValidationError(str(error)) from error

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        try:
            self.prepared = image_prepare(image_read(upload), name=upload.name)
        except ImageRefused as error:
            raise forms.ValidationError(str(error)) from error
        return upload


def image_json(image: Image, *, alt: str = "") -> dict:
    """What the editor's page needs to show and insert one image."""
    return {
        "id": image.pk,
        "alt": image.alt,
        "url": image_url(image),
        "width": image.width,
        "height": image.height,
        "size": image.size,
        "markdown": image_markdown(image, alt=alt),
    }


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "alt", "newsletter", "dimensions", "stored_size", "created_at"]
    list_display_links = ["alt"]
    list_filter = ["newsletter"]
    search_fields = ["alt", "original_name"]
    readonly_fields = ["newsletter", "thumbnail", "width", "height", "size", "content_type", "original_name"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ImageUploadForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["newsletter", "alt", "upload"]
        return ["thumbnail", "newsletter", "alt", "width", "height", "size", "content_type", "original_name"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        stored = image_store(
            newsletter=form.cleaned_data["newsletter"],
            prepared=form.prepared,
            name=form.cleaned_data["upload"].name,
            alt=form.cleaned_data["alt"],
        )
        obj.pk, obj.file = stored.pk, stored.file  # the admin's message and redirect name this row
        obj._state.adding = False

    @admin.display(description="Image")
    def thumbnail(self, obj):
        return format_html('<img src="{}" alt="" width="96" style="height:auto">', image_url(obj))

    @admin.display(description="Pixels")
    def dimensions(self, obj):
        return f"{obj.width} × {obj.height}"

    @admin.display(description="Size", ordering="size")
    def stored_size(self, obj):
        return filesizeformat(obj.size)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("upload/", wrap(require_POST(self.upload)), name="newsletters_image_upload"),
            path("library/", wrap(require_GET(self.library)), name="newsletters_image_library"),
            *super().get_urls(),
        ]

    def upload(self, request):
        """Store the posted image in its newsletter's library and answer with the Markdown that shows it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        newsletter = _newsletter(request.POST.get("newsletter", ""))
        upload = request.FILES.get("file")
        if newsletter is None:
            return JsonResponse(
                {"error": "Choose the issue's newsletter first: images belong to its library."}, status=400
            )
        if upload is None:
            return JsonResponse({"error": "Choose an image file to upload."}, status=400)
        try:
            alt = image_alt_clean(request.POST.get("alt", ""))
            prepared = image_prepare(image_read(upload), name=upload.name)
        except ImageRefused as error:
            return JsonResponse({"error": str(error)}, status=400)
        image = image_store(newsletter=newsletter, prepared=prepared, name=upload.name, alt=alt)
        return JsonResponse(image_json(image, alt=alt), status=201)

    def library(self, request):
        """The newsletter's latest images, to insert one again."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        newsletter = _newsletter(request.GET.get("newsletter", ""))
        images = Image.objects.filter(newsletter=newsletter)[:LIBRARY_SIZE] if newsletter else []
        return JsonResponse({"images": [image_json(image) for image in images]})


def _newsletter(value: str) -> Newsletter | None:
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        return None
    return Newsletter.objects.filter(pk=int(value)).first()
