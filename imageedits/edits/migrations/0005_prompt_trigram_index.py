"""Search over instructions that stays fast at 100,000 edits on PostgreSQL: a trigram index on
UPPER(prompt), the expression Django's icontains compares. Nothing on other databases.

Hosted databases may not let the app's role create extensions: then an administrator runs
`CREATE EXTENSION pg_trgm;` and this migration is run again (`migrate edits 0004` first);
without it, search works, only slower."""

import sys

from django.db import DatabaseError, migrations, transaction

INDEX = "edit_prompt_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        sys.stderr.write(f"pg_trgm is not available ({error}); search will not be indexed.\n")
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON edits_edit USING gin (UPPER(prompt) gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("edits", "0004_indexes_for_work_under_way")]

    operations = [migrations.RunPython(create, drop)]
