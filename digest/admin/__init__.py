"""The engine's admin: the ledger, returned mail, and issues and newsletters with previews and reports.

ModelAdmins live in this package's modules; each model is registered here, once. The
dashboard and the deliverability page are views of digest.desk (project/urls.py).
"""

from django.contrib import admin

from digest.admin.deliveries import SubscriberBounceAdmin
from digest.admin.issues import IssueDigestAdmin, NewsletterDigestAdmin
from newsletters.models import Issue, Newsletter, Subscriber

admin.site.unregister(Issue)
admin.site.register(Issue, IssueDigestAdmin)
admin.site.unregister(Subscriber)
admin.site.register(Subscriber, SubscriberBounceAdmin)
admin.site.unregister(Newsletter)
admin.site.register(Newsletter, NewsletterDigestAdmin)
