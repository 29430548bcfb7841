"""A reader's language: chosen from Accept-Language at subscribe, kept, changed on the preferences page."""

import datetime
import re

import lxml.html
import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from newsletters.invitations import invitation_message
from newsletters.languages import mail_language
from newsletters.letters import confirm_render, welcome_render
from newsletters.models import Subscriber, SubscriberStatus, SubscriptionStatus
from newsletters.onboarding import reconfirm_message
from newsletters.tokens import keep_url, preferences_url
from tests.factories import NewsletterFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site(settings):
    cache.clear()
    settings.SITE_URL = "http://testserver"


def _tree(response) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.content)


def _path(url: str) -> str:
    return url.split("testserver", 1)[-1]


def test_a_german_browser_subscribes_in_german_and_the_reader_stays_german():
    weekly = NewsletterFactory(name="Weekly Notes", slug="weekly")
    browser = Client(headers={"accept-language": "de-DE,de;q=0.9,en;q=0.5"})
    page = _tree(browser.get("/subscribe/"))
    assert (page.get("lang"), page.get("dir")) == ("de", "ltr")
    assert page.findtext(".//h1") == "Abonnieren"
    assert page.xpath("string(//label[@for='id_email'])") == "E-Mail-Adresse"

    response = browser.post(
        "/subscribe/",
        {
            "email": "greta@example.com",
            "timezone": "Europe/Berlin",
            f"nl_{weekly.pk}": "on",
            f"freq_{weekly.pk}": "daily",
        },
    )
    assert response.status_code == 302
    assert _tree(browser.get(response["Location"])).findtext(".//h1") == "Sehen Sie in Ihr Postfach"
    [message] = mail.outbox
    assert message.subject == "Bestätigen Sie Ihr Abonnement"
    assert "Jemand, hoffentlich Sie, möchte Folgendes erhalten:" in message.body
    assert "- Weekly Notes (täglich)" in message.body
    assert "Bestätigen Sie mit diesem Link (er gilt 7 Tage):" in message.body
    html = lxml.html.fromstring(message.alternatives[0].content)
    assert (html.get("lang"), html.get("dir")) == ("de", "ltr")
    assert "Abonnement bestätigen" in html.text_content()

    # The link opened anywhere (no Accept-Language at all) keeps the reader's language.
    link = re.search(r"http://testserver(/confirm/\S+/)", message.body).group(1)
    elsewhere = Client()
    assert _tree(elsewhere.get(link)).findtext(".//h1") == "Bestätigen Sie Ihr Abonnement"
    preferences = elsewhere.post(link)
    assert Subscriber.objects.get().language == "de"
    page = _tree(elsewhere.get(preferences["Location"]))
    assert page.get("lang") == "de"
    assert page.findtext(".//h1") == "Ihre Newsletter"
    assert "Sie sind angemeldet." in page.text_content()


def test_a_browser_asking_for_an_unshipped_language_leaves_the_newsletters():
    weekly = NewsletterFactory(slug="weekly", language="fr")
    browser = Client(headers={"accept-language": "ja, zh;q=0.8"})
    browser.post(
        "/subscribe/",
        {"email": "kai@example.com", "timezone": "UTC", f"nl_{weekly.pk}": "on", f"freq_{weekly.pk}": "weekly"},
    )
    [message] = mail.outbox
    assert message.subject == "Confirmez votre abonnement"  # the newsletter's language
    Client().post(re.search(r"http://testserver(/confirm/\S+/)", message.body).group(1))
    assert Subscriber.objects.get().language == ""  # still the newsletter's, whatever it becomes


def test_the_preferences_page_changes_the_language_and_refuses_one_not_shipped():
    subscription = SubscriptionFactory(subscriber=SubscriberFactory(language="de", name="Ana"))
    url = _path(preferences_url(subscription.subscriber.pk))
    client = Client()
    page = _tree(client.get(url))
    assert page.get("lang") == "de"
    assert page.xpath("//select[@name='language']/option[@selected]/@value") == ["de"]
    form = {
        "name": "Ana",
        "timezone": "UTC",
        "language": "fr",
        f"freq_{subscription.pk}": "weekly",
        f"status_{subscription.pk}": "active",
        "save": "",
    }
    page = _tree(client.post(url, form))
    assert (page.get("lang"), page.findtext(".//h1")) == ("fr", "Vos lettres d’information")
    assert "Enregistré." in page.text_content()
    assert Subscriber.objects.get().language == "fr"

    refused = client.post(url, form | {"language": "xx"})
    assert refused.status_code == 400
    assert Subscriber.objects.get().language == "fr"

    page = _tree(client.post(url, form | {"language": ""}))  # back to the newsletter's (en)
    assert (page.get("lang"), Subscriber.objects.get().language) == ("en", "")


def test_an_arabic_reader_gets_right_to_left_pages():
    subscription = SubscriptionFactory(subscriber=SubscriberFactory(language="ar"))
    page = _tree(Client().get(_path(preferences_url(subscription.subscriber.pk))))
    assert (page.get("lang"), page.get("dir")) == ("ar", "rtl")
    assert page.findtext(".//h1") == "نشراتك"


@pytest.mark.parametrize(
    ("reader", "newsletter", "expected"),
    [("de", "fr", "de"), ("", "fr", "fr"), ("", "fr-CA", "fr"), ("", "he", "en"), ("", "", "en")],
)
def test_a_mails_language_is_the_readers_else_the_newsletters_else_language_code(reader, newsletter, expected):
    assert mail_language(reader=reader, newsletter=newsletter) == expected


def test_the_welcome_and_confirmation_wear_the_newsletters_template_in_the_readers_language():
    newsletter = NewsletterFactory(template="plain", welcome_text="Welcome!", header_text="A **header**.")
    welcome = welcome_render(
        newsletter=newsletter,
        name="Ada",
        email="a@example.com",
        body="Welcome!",
        latest=None,
        preferences_url="https://x.example/p",
        language="de",
    )
    assert welcome.text.startswith("Hallo Ada,\n\nA *header*.\n")
    assert "Georgia" in welcome.html and "A <strong>header</strong>." in welcome.html  # the plain theme, the brand
    page = lxml.html.fromstring(welcome.html)
    assert (page.get("lang"), page.get("dir")) == ("de", "ltr")
    assert page.find_class("greeting")[0].text_content().strip() == "Hallo Ada,"
    confirm = confirm_render(
        name="Ada",
        newsletters=[(newsletter, "Daily")],
        confirm_url="https://x.example/c",
        max_age_days=7,
        language="ar",
    )
    page = lxml.html.fromstring(confirm.html)
    assert (page.get("lang"), page.get("dir")) == ("ar", "rtl") and "Georgia" in confirm.html
    assert "أكّد اشتراكك" in confirm.subject + page.find_class("masthead")[0].text_content()
    # Without a reader's language: the newsletter's own.
    english = confirm_render(name="Ada", newsletters=[(newsletter, "Daily")], confirm_url="x", max_age_days=7)
    assert lxml.html.fromstring(english.html).get("lang") == mail_language(reader="", newsletter=newsletter.language)


def _invitation_and_reconfirmation(language: str) -> list:
    """A pending reader's invitation and an active reader's "still want this?" mail, both of an English newsletter."""
    newsletter = NewsletterFactory(name="Weekly Notes", slug="weekly", language="en")
    pending = SubscriptionFactory(
        newsletter=newsletter,
        status=SubscriptionStatus.PENDING,
        frequency="weekly",
        subscriber=SubscriberFactory(name="Ada", language=language, status=SubscriberStatus.PENDING),
    )
    active = SubscriptionFactory(newsletter=newsletter, subscriber=SubscriberFactory(name="Ada", language=language))
    now = datetime.datetime(2026, 6, 2, 8, 5, tzinfo=datetime.UTC)
    return [
        invitation_message(pending, now=now),
        reconfirm_message(subscription=active, pause_at=now + datetime.timedelta(days=14)),
    ]


def test_a_german_readers_invitation_and_reconfirmation_are_german():
    invitation, reconfirmation = _invitation_and_reconfirmation("de")
    assert invitation.subject == "Möchten Sie Weekly Notes erhalten?"
    assert invitation.body.startswith("Hallo Ada,\n")
    assert "Weekly Notes zieht um, und Ihre Adresse steht auf der Liste." in invitation.body
    assert "(wöchentlich), bestätigen Sie mit diesem Link (er gilt 7 Tage):" in invitation.body
    html = lxml.html.fromstring(invitation.alternatives[0].content)
    assert (html.get("lang"), html.get("dir")) == ("de", "ltr")
    assert html.xpath("string(//td[@bgcolor]/a)") == "Ja, weiter zusenden"
    assert "Ein Klick bestätigt es; ohne ihn erhalten Sie nichts mehr." in html.text_content()  # the preheader

    assert reconfirmation.subject == "Möchten Sie Weekly Notes weiterhin?"
    assert "Wenn wir bis zum 16. Juni 2026 nichts von Ihnen hören, pausieren wir ihn" in reconfirmation.body
    html = lxml.html.fromstring(reconfirmation.alternatives[0].content)
    assert (html.get("lang"), html.get("dir")) == ("de", "ltr")
    assert html.xpath("string(//a/strong)") == "Ja, Weekly Notes weiter zusenden"


def test_an_arabic_readers_invitation_and_reconfirmation_are_arabic_and_right_to_left():
    invitation, reconfirmation = _invitation_and_reconfirmation("ar")
    for message in (invitation, reconfirmation):
        html = lxml.html.fromstring(message.alternatives[0].content)
        assert (html.get("lang"), html.get("dir")) == ("ar", "rtl")
        assert html.xpath("string(//td[contains(@class, 'letter')]/@align)") == "right"
        assert message.body.startswith("مرحبًا Ada،\n")
    assert invitation.subject == "هل تود تلقي Weekly Notes؟"
    assert reconfirmation.subject == "هل ما زلت تريد Weekly Notes؟"


def test_the_keep_page_speaks_the_readers_language():
    subscription = SubscriptionFactory(subscriber=SubscriberFactory(language="de"))
    client = Client(headers={"accept-language": "en"})
    url = _path(keep_url(subscription.pk))
    page = _tree(client.get(url))
    assert (page.get("lang"), page.findtext(".//button")) == ("de", "Ja, weiter zusenden")
    page = _tree(client.post(url))
    assert page.findtext(".//h1") == f"Danke, {subscription.newsletter.name} kommt weiterhin"
