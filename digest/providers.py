"""Which mailbox provider a reader's address belongs to, so sending can pace itself per provider.

Gmail, Outlook, Yahoo and the others throttle a sender per receiving provider (421 4.7.28,
"4.7.0 temporarily deferred"), whatever the relay in between. Addresses at the providers'
own domains are known by their domain; any other domain is its own provider (a company's
domain hosted at Google Workspace or Microsoft 365 paces apart from gmail.com: a lookup of
every reader's MX would put DNS in the send path).
"""

# The providers' own mail domains (the address's domain or a parent of it).
PROVIDERS = {
    "google": ("gmail.com", "googlemail.com"),
    "microsoft": ("outlook.com", "hotmail.com", "live.com", "msn.com", "outlook.de", "hotmail.co.uk", "hotmail.fr"),
    "yahoo": ("yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "ymail.com", "rocketmail.com", "aol.com"),
    "apple": ("icloud.com", "me.com", "mac.com"),
    "gmx": ("gmx.de", "gmx.net", "gmx.com", "gmx.at", "gmx.ch", "web.de", "mail.com"),
    "mailru": ("mail.ru", "bk.ru", "inbox.ru", "list.ru"),
}
_BY_DOMAIN = {domain: provider for provider, domains in PROVIDERS.items() for domain in domains}


def provider_of(address: str) -> str:
    """The provider of an address: a known provider's name, else its own domain (lowercased)."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    labels = domain.split(".")
    for start in range(len(labels) - 1):
        known = _BY_DOMAIN.get(".".join(labels[start:]))
        if known:
            return known
    return domain
