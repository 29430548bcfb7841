"""API tokens in the admin: made here, their secret shown once."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from api.models import ApiToken, Consent, Scope
from api.tokens import token_secret_set


class ApiTokenForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiToken
        fields = ["name", "scopes", "expires_at"]


def _show_secret(request, token: ApiToken, raw: str) -> None:
    messages.warning(
        request,
        format_html(
            "The secret of {}: <code>{}</code> Copy it now: it is not stored and cannot be shown again.",
            token.name,
            raw,
        ),
    )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["name", "prefix", "scope_list", "expires_at", "last_used_at", "created_by", "created_at"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at"]
    search_fields = ["name", "prefix"]
    actions = ["secret_renew"]

    @admin.display(description="Scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def get_fields(self, request, obj=None):
        return ["name", "scopes", "expires_at", *(self.readonly_fields if obj else [])]

    def save_model(self, request, obj, form, change):
        raw = None
        if not change:
            obj.created_by = request.user
            raw = token_secret_set(obj)
        super().save_model(request, obj, form, change)
        if raw:
            _show_secret(request, obj, raw)

    @admin.action(description="Give a new secret (the old one stops working)", permissions=["change"])
    def secret_renew(self, request, queryset):
        for token in queryset:
            raw = token_secret_set(token)
            token.save(update_fields=["prefix", "secret_hash"])
            _show_secret(request, token, raw)


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ["subscriber", "newsletters", "given_at", "recorded_by", "recorded_at"]
    search_fields = ["subscriber__email", "recorded_by"]
    list_select_related = ["subscriber"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
