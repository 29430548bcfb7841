"""Public reader pages: the newsletter list, each newsletter's archive, each issue."""

from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from newsletters.markup import markdown_to_html
from newsletters.selectors import issues_visible, newsletters_public


def home(request):
    """List the newsletters a reader can follow."""
    return render(request, "newsletters/home.html", {"newsletters": newsletters_public()})


def archive(request, slug):
    """List a newsletter's published issues."""
    newsletter = get_object_or_404(newsletters_public(), slug=slug)
    issues = issues_visible(newsletter=newsletter, now=timezone.now())
    return render(request, "newsletters/archive.html", {"newsletter": newsletter, "issues": issues})


def issue_detail(request, slug, issue_slug):
    """Show one published issue as readers get it."""
    newsletter = get_object_or_404(newsletters_public(), slug=slug)
    issue = get_object_or_404(issues_visible(newsletter=newsletter, now=timezone.now()), slug=issue_slug)
    context = {"newsletter": newsletter, "issue": issue, "body_html": markdown_to_html(issue.body)}
    return render(request, "newsletters/issue.html", context)
