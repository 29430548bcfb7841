from django.db import migrations

from newsletters.roles import roles_apply


class Migration(migrations.Migration):
    dependencies = [
        ("newsletters", "0007_newsletter_paused"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        # The dashboard and reports need the digest app's view permissions.
        ("digest", "0010_installation"),
    ]

    operations = [migrations.RunPython(roles_apply, migrations.RunPython.noop)]
