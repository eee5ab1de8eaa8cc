"""Contacts are unique on ``email_key`` (Python's casefold of the address), not SQL lower(email).

SQLite's lower() folds ASCII only and PostgreSQL's follows the locale, while the suppression
HMAC has always hashed ``emails.email_key`` (casefold): three notions of "the same address".
The key is now computed in Python and stored, so both databases agree with the suppression list.

Existing contacts get their key in batches (keyset by id; one statement a batch).  Rows that
now share a key (``zoë@`` and ``ZOË@``: two contacts on SQLite, which lower() kept apart;
``straße@`` and ``strasse@`` on either database) are NOT merged here: which name, which
subscriptions, whose consent history and CRM records survive is a decision about a person's
data that an operator makes and the audit log records, not something an upgrade should do
silently.  The oldest contact of each group keeps the key (look-ups by address find it); each
newer one keeps a NULL key, and `tidings doctor` lists them by id until an operator has merged
or erased them.  Suppression already folded them together (the HMAC is of the same key), so
nobody who left is mailed through the twin in the meantime.
"""

from django.db import migrations, models
from django.db.models import Exists, OuterRef

BATCH = 5000


def _key(email):
    # Must equal tidings.audience.emails.email_key at the time of writing (frozen here, as a
    # migration must not follow later code).
    return email.casefold()


def fill_keys(apps, schema_editor):
    Contact = apps.get_model("audience", "Contact")
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    table = quote(Contact._meta.db_table)
    contacts = Contact.objects.using(connection.alias)
    last = 0
    with connection.cursor() as cursor:
        while True:
            batch = list(
                contacts.filter(pk__gt=last).order_by("pk").values_list("pk", "email")[:BATCH]
            )
            if not batch:
                break
            last = batch[-1][0]
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} AS c SET email_key = u.k "  # noqa: S608 (names, not values)
                    "FROM unnest(%s::bigint[], %s::text[]) AS u(id, k) WHERE c.id = u.id",
                    [[pk for pk, _ in batch], [_key(email) for _, email in batch]],
                )
            else:
                cursor.executemany(
                    f"UPDATE {table} SET email_key = %s WHERE id = %s",  # noqa: S608
                    [(_key(email), pk) for pk, email in batch],
                )


def keep_apart(apps, schema_editor):
    """Every contact whose key an older contact has too loses it (NULL), to be merged later."""
    Contact = apps.get_model("audience", "Contact")
    contacts = Contact.objects.using(schema_editor.connection.alias)
    older = contacts.filter(email_key=OuterRef("email_key"), pk__lt=OuterRef("pk"))
    contacts.filter(Exists(older)).update(email_key=None)


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0010_engagement_facts'),
    ]

    operations = [
        migrations.AddField(
            model_name='contact',
            name='email_key',
            field=models.TextField(editable=False, null=True),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop, elidable=False),
        # A plain index for keep_apart's look-ups (built once on the filled column, cheaper
        # than maintaining it through the fill), dropped once the unique one exists.
        migrations.AddIndex(
            model_name='contact',
            index=models.Index(fields=['email_key'], name='contact_email_key_fill'),
        ),
        migrations.RunPython(keep_apart, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(
            model_name='contact',
            name='contact_email_ci_unique',
        ),
        migrations.AddConstraint(
            model_name='contact',
            constraint=models.UniqueConstraint(fields=['email_key'], name='contact_email_key_unique', opclasses=['text_pattern_ops']),
        ),
        migrations.RemoveIndex(
            model_name='contact',
            name='contact_email_key_fill',
        ),
    ]
