# The contacts' engagement facts (audience 0010) computed from the events and deliveries already
# kept, so that opened_in()/clicked_in()/received_in() mean the same before and after the upgrade.
# The SQL is frozen here (campaigns.engagement.rebuild does the same with today's models); by
# ranges of contact ids, so no statement holds the whole table.  `tidings engagement --rebuild`
# runs it again.

from django.db import migrations

BATCH = 50_000

POSTGRESQL = """
WITH seen AS (
    SELECT d.contact_id,
           max(e.at) FILTER (WHERE e.kind IN ('open', 'click')) AS opened,
           max(e.at) FILTER (WHERE e.kind = 'click') AS clicked
    FROM campaigns_event e JOIN campaigns_delivery d ON d.id = e.delivery_id
    WHERE d.contact_id >= %(low)s AND d.contact_id < %(high)s
      AND NOT e.machine AND e.kind IN ('open', 'click')
    GROUP BY d.contact_id
), sent AS (
    SELECT contact_id, max(sent_at) AS received
    FROM campaigns_delivery
    WHERE contact_id >= %(low)s AND contact_id < %(high)s AND status = 'sent'
    GROUP BY contact_id
)
UPDATE audience_contact c
SET last_opened_at = seen.opened, last_clicked_at = seen.clicked, last_received_at = sent.received
FROM audience_contact c2
LEFT JOIN seen ON seen.contact_id = c2.id
LEFT JOIN sent ON sent.contact_id = c2.id
WHERE c.id = c2.id AND c2.id >= %(low)s AND c2.id < %(high)s
  AND (seen.contact_id IS NOT NULL OR sent.contact_id IS NOT NULL)
"""

OTHER = """
UPDATE audience_contact SET
    last_opened_at = (
        SELECT max(e.at) FROM campaigns_event e JOIN campaigns_delivery d ON d.id = e.delivery_id
        WHERE d.contact_id = audience_contact.id AND NOT e.machine AND e.kind IN ('open', 'click')
    ),
    last_clicked_at = (
        SELECT max(e.at) FROM campaigns_event e JOIN campaigns_delivery d ON d.id = e.delivery_id
        WHERE d.contact_id = audience_contact.id AND NOT e.machine AND e.kind = 'click'
    ),
    last_received_at = (
        SELECT max(d.sent_at) FROM campaigns_delivery d
        WHERE d.contact_id = audience_contact.id AND d.status = 'sent'
    )
WHERE id >= %(low)s AND id < %(high)s
"""


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    sql = POSTGRESQL if connection.vendor == "postgresql" else OTHER
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM audience_contact")
        low, high = cursor.fetchone()
        if low is None:
            return
        for start in range(low, high + 1, BATCH):
            cursor.execute(sql, {"low": start, "high": start + BATCH})


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0010_engagement_facts'),
        ('campaigns', '0015_dmarc_reports'),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
