"""The message every mail to readers is built as: verbatim headers, 7-bit parts, a Message-ID on the site's host."""

import email
import email.policy

import pytest

from newsletters.messages import ReaderEmail, Verbatim, phrase


def test_a_name_is_quoted_or_encoded_and_the_list_id_stays_literal():
    assert phrase("Weekly Notes") == "Weekly Notes"
    assert phrase("Notes, weekly") == '"Notes, weekly"'
    assert phrase("Grüße") == "=?utf-8?b?R3LDvMOfZQ==?="
    folded = Verbatim("List-Id", f"{phrase(('Ωμέγα ' * 12).strip())} <omega.example.com>").fold(
        policy=email.policy.SMTP
    )
    assert folded.endswith(" <omega.example.com>\r\n")
    # Broken only at spaces: a word (here, a 72-character encoded-word) is never cut.
    assert all(len(line) <= 78 for line in folded.split("\r\n")[1:])
    assert (
        email.message_from_string(folded, policy=email.policy.default)["List-Id"]
        == ("Ωμέγα " * 12).strip() + " <omega.example.com>"
    )


@pytest.mark.parametrize("value", ["Zoë", "a\r\nBcc: x@example.com", "x" * 1000])
def test_a_value_that_cannot_go_out_verbatim_is_refused(value):
    with pytest.raises(ValueError):
        Verbatim("List-Id", value)


def test_a_reader_email_has_its_message_id_on_the_site_host_and_keeps_it(settings):
    settings.SITE_URL = "https://news.example.org"
    message = ReaderEmail(subject="Hi", body="Grüße", to=["ann@example.com"])
    first = message.message()
    assert first["Message-ID"].endswith("@news.example.org>")
    assert message.message()["Message-ID"] == first["Message-ID"]  # anymail serializes again
    assert first.get_body(("plain",))["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    given = ReaderEmail(subject="Hi", body="x", to=["ann@example.com"], headers={"Message-ID": "<a@b.example>"})
    assert given.message()["Message-ID"] == "<a@b.example>"
