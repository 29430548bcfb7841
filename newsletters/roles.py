"""The staff roles: which admin permissions an "Editor" and a "Newsletter owner" hold.

Editors write, preview, schedule and publish issues and see the dashboard and reports; they
manage no users, change no newsletter settings and delete no subscribers. Owners can do
that too, for everything but users (user management stays with superusers). The groups are
created by a migration and kept equal to this table by `roles_apply`.
"""

from django.contrib.auth.management import create_permissions

EDITOR = "Editor"
OWNER = "Newsletter owner"

_EDITOR_PERMISSIONS = [
    "newsletters.add_issue",
    "newsletters.change_issue",
    "newsletters.view_issue",
    "newsletters.add_attachment",
    "newsletters.change_attachment",
    "newsletters.delete_attachment",
    "newsletters.view_attachment",
    # The media library: upload images and insert them (deleting one could break sent issues).
    "newsletters.add_image",
    "newsletters.change_image",
    "newsletters.view_image",
    "newsletters.view_newsletter",
    # The audience of an issue and the dashboard's reader counts.
    "newsletters.view_subscriber",
    "newsletters.view_subscription",
    # The dashboard, issue reports and the bounce and complaint counts they link to.
    "digest.view_delivery",
    "digest.view_bounceevent",
    "feeds.view_feed",
]

_OWNER_PERMISSIONS = [
    *_EDITOR_PERMISSIONS,
    "newsletters.add_newsletter",
    "newsletters.change_newsletter",
    "newsletters.delete_issue",
    "newsletters.delete_image",
    "newsletters.add_subscriber",
    "newsletters.change_subscriber",
    "newsletters.delete_subscriber",
    "newsletters.add_subscription",
    "newsletters.change_subscription",
    "newsletters.delete_subscription",
    # Bringing readers in from a file is a matter of consent: owners, not editors.
    "newsletters.add_subscriberimport",
    "newsletters.view_subscriberimport",
    "digest.change_delivery",
    "feeds.add_feed",
    "feeds.change_feed",
    "feeds.delete_feed",
]

ROLES: dict[str, list[str]] = {EDITOR: _EDITOR_PERMISSIONS, OWNER: _OWNER_PERMISSIONS}


def roles_apply(apps, schema_editor=None) -> None:
    """Create the role groups, or set their permissions back to the table (a data migration's step).

    Permissions of apps not migrated yet are left out; the migration of each app that adds
    some runs this again.
    """
    # Permissions are otherwise created after all migrations (post_migrate): make those of
    # the models migrated so far now, so the groups can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, permissions in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = [tuple(permission.split(".")) for permission in permissions]
        found = [
            found.pk
            for app_label, codename in wanted
            for found in permission_model.objects.filter(content_type__app_label=app_label, codename=codename)
        ]
        group.permissions.set(found)
