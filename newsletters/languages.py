"""Which language a reader sees: theirs, else their newsletter's, else the site's (LANGUAGE_CODE).

A reader's language is one of the shipped LANGUAGES (locale/<code>/), chosen at subscribe
from Accept-Language and changed on the preferences page; empty means "the newsletter's".
A newsletter's language is any BCP 47 tag (it is the language its issues are written in): the
pages and mails use the closest shipped one, else LANGUAGE_CODE.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation.trans_real import parse_accept_lang_header


def shipped_languages() -> list[tuple[str, str]]:
    """The (code, name) pairs readers may choose: settings.LANGUAGES."""
    return list(settings.LANGUAGES)


def validate_shipped_language(value: str) -> None:
    """Accept a language of LANGUAGES (or empty: the newsletter's)."""
    if value and value not in dict(settings.LANGUAGES):
        codes = ", ".join(code for code, _name in settings.LANGUAGES)
        raise ValidationError(
            _("%(value)s is not one of the languages offered (%(codes)s)."),
            code="language",
            params={"value": value, "codes": codes},
        )


def supported(language: str) -> str:
    """The shipped language closest to a tag (pt-BR → pt, de-AT → de), else LANGUAGE_CODE's."""
    for tag in (language, settings.LANGUAGE_CODE):
        if tag:
            try:
                return translation.get_supported_language_variant(tag)
            except LookupError:
                continue
    return settings.LANGUAGE_CODE


def mail_language(*, reader: str, newsletter: str) -> str:
    """The language of a reader's mail: the reader's, else the newsletter's, else LANGUAGE_CODE's."""
    return supported(reader or newsletter)


def request_language(request: HttpRequest) -> str:
    """A new reader's language: the first shipped one their browser asks for, else "" (the newsletter's)."""
    for tag, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        if tag == "*":
            break
        try:
            return translation.get_supported_language_variant(tag)
        except LookupError:
            continue
    return ""


def reader_activate(*, reader: str, newsletter: str = "") -> None:
    """Show the rest of this request in a reader's language (pages reached by their own link).

    Knowing neither, the page stays in the browser's language (LocaleMiddleware's choice).
    """
    if reader or newsletter:
        translation.activate(mail_language(reader=reader, newsletter=newsletter))
