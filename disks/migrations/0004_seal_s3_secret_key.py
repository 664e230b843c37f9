"""S3 secret keys are stored sealed under the master key: the column becomes a SealedTextField and
every existing plaintext secret is sealed (re-saving opens and seals again, so a rerun is harmless)."""

from django.db import migrations

import disks.fields


def seal_existing(apps, schema_editor):
    Disk = apps.get_model("disks", "Disk")
    for disk in Disk.objects.using(schema_editor.connection.alias).exclude(s3_secret_key=""):
        # Loading returns the plaintext (unsealed rows as they are); saving seals it.
        disk.save(update_fields=["s3_secret_key"])


def unseal(apps, schema_editor):
    Disk = apps.get_model("disks", "Disk")
    connection = schema_editor.connection
    table = connection.ops.quote_name(Disk._meta.db_table)
    with connection.cursor() as cursor:
        for disk in Disk.objects.using(connection.alias).exclude(s3_secret_key=""):
            pk = Disk._meta.pk.get_db_prep_value(disk.pk, connection)
            cursor.execute(f"UPDATE {table} SET s3_secret_key = %s WHERE id = %s", [disk.s3_secret_key, pk])


class Migration(migrations.Migration):
    dependencies = [("disks", "0003_replica_state_new")]

    operations = [
        migrations.AlterField(
            model_name="disk",
            name="s3_secret_key",
            field=disks.fields.SealedTextField(blank=True),
        ),
        migrations.RunPython(seal_existing, unseal),
    ]
