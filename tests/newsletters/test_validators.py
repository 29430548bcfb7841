import pytest
from django.core.exceptions import ValidationError

from newsletters.models import Issue, Subscriber
from newsletters.validators import email_normalize, validate_single_line
from tests.factories import NewsletterFactory


@pytest.mark.parametrize(
    "value", ["a\x1cb", "a\x1db", "a\x1eb", "a\x00b", "a\x07b", "a\tb", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b"]
)
def test_control_characters_are_refused(value):
    with pytest.raises(ValidationError):
        validate_single_line(value)


@pytest.mark.parametrize("value", ["Ünïcödé — fine", "日本語のタイトル", "Q&A: <tags> & 'quotes'", ""])
def test_printable_text_passes(value):
    validate_single_line(value)


def test_the_error_names_the_character():
    with pytest.raises(ValidationError) as caught:
        validate_single_line("bell\x07")
    assert "U+0007" in caught.value.messages[0]


@pytest.mark.django_db
def test_models_refuse_a_title_or_name_with_a_group_separator():
    issue = Issue(newsletter=NewsletterFactory(), title="Issue\x1dTwo", slug="two", body="x")
    with pytest.raises(ValidationError) as caught:
        issue.full_clean()
    assert "title" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        Subscriber(email="a@example.com", name="Ann\x1e").full_clean()
    assert "name" in caught.value.message_dict


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ('"quoted"@example.com', "quoted@example.com"),
        ('"quo\\ted"@example.com', "quoted@example.com"),
        ('"first.last"@Example.COM', "first.last@example.com"),
        ('"ann"@xn--bcher-kva.example', "ann@bücher.example"),
        ('"two words"@example.com', '"two words"@example.com'),  # needs its quotes: kept
        ('".dot"@example.com', '".dot"@example.com'),
        ('"a..b"@example.com', '"a..b"@example.com'),
        ('""@example.com', '""@example.com'),
    ],
)
def test_an_address_has_one_canonical_form(given, canonical):
    """L3: quoted local parts that need no quotes passed the per-address limit as other addresses."""
    assert email_normalize(given) == canonical
