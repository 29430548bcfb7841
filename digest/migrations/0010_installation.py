import secrets

from django.db import migrations, models


def installation_create(apps, schema_editor):
    Installation = apps.get_model("digest", "Installation")
    if not Installation.objects.exists():
        Installation.objects.create(key=secrets.token_hex(6))


class Migration(migrations.Migration):

    dependencies = [
        ('digest', '0009_breaker_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='Installation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(help_text='Random, made once when the database was created.', max_length=32, unique=True)),
            ],
        ),
        migrations.RunPython(installation_create, migrations.RunPython.noop),
    ]
