"""Delivery out of the request path (notification channels) and the outbound case-events feed.

- ``notifications.dispatched_at``: NULL while a recorded notification still has to be expanded into
  channel deliveries. Every writer of ``notifications`` (the services, the intake's group commit) thus
  writes the outbox entry in its own transaction without knowing about channels; the delivery worker
  expands it (``core.notifications.outbox``). Rows recorded before this migration count as dispatched.
- ``deliveries``: one row per (notification, channel, recipient) or per case-events batch of a
  subscription, with its idempotency key (unique), state (pending, delivered, skipped, dead), attempts
  and the next attempt's time (exponential back-off, and the claim's lease while a worker sends it).
- ``channel_preferences``: an account's choice per channel (on or off, its e-mail address or phone),
  with the account's role, node and enterprise copied so the worker can match recipients inside the
  tenant schema.
- ``event_subscriptions``: a bureau node's subscription to the case events of its subtree, delivered
  in batches through a channel (the signed webhook) from its cursor.
- ``complaint_events.feed_key``: the events feed's order key, ``feed_clock()`` of the inserting
  transaction (its transaction id plus the schema's shift, bigint). The feed orders by
  ``(feed_key, id)`` and returns only events below ``feed_horizon()`` (the oldest transaction still
  running, plus the same shift), so a cursor never skips an event committed late. Both functions are
  created here with shift 0; ``odr tenant move`` and ``odr migrate`` raise the shift when the schema
  arrives on a cluster whose transaction ids are behind its keys
  (:mod:`core.notifications.feed_clock`), so the key stays monotonic per tenant across clusters.
  Events recorded before this migration get the migration's own key (their order stays by id).
"""

from core.db.migrations import sql_migration

ID = "0009"
DESCRIPTION = "delivery outbox, channel preferences, event subscriptions, commit-ordered events feed"

forwards = sql_migration(
    ID,
    DESCRIPTION,
    "ALTER TABLE notifications ADD COLUMN dispatched_at timestamptz DEFAULT now()",
    "ALTER TABLE notifications ALTER COLUMN dispatched_at DROP DEFAULT",
    "CREATE INDEX notifications_undispatched_idx ON notifications (id) WHERE dispatched_at IS NULL",
    """
    CREATE TABLE event_subscriptions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        node_code text NOT NULL UNIQUE REFERENCES jurisdictions(code),
        channel text NOT NULL DEFAULT 'odr_webhook',
        active boolean NOT NULL DEFAULT true,
        cursor_key bigint NOT NULL DEFAULT 0,
        cursor_id bigint NOT NULL DEFAULT 0,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE deliveries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        idempotency_key text NOT NULL UNIQUE,
        notification_id bigint REFERENCES notifications(id),
        subscription_id uuid REFERENCES event_subscriptions(id),
        channel text NOT NULL,
        node_code text NOT NULL,
        recipient text NOT NULL,
        address text,
        kind text NOT NULL,
        message jsonb NOT NULL,
        state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'skipped', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_error text,
        detail text,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    )
    """,
    "CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE state = 'pending'",
    "CREATE INDEX deliveries_node_idx ON deliveries (node_code, state, id)",
    "CREATE INDEX deliveries_subscription_idx ON deliveries (subscription_id, state) WHERE subscription_id IS NOT NULL",
    """
    CREATE TABLE channel_preferences (
        account_id uuid NOT NULL,
        channel text NOT NULL,
        enabled boolean NOT NULL DEFAULT true,
        address text,
        account_role text NOT NULL,
        node_code text,
        enterprise_id uuid,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, channel)
    )
    """,
    "CREATE INDEX channel_preferences_enterprise_idx ON channel_preferences (enterprise_id) WHERE enterprise_id IS NOT NULL",
    "CREATE INDEX channel_preferences_node_idx ON channel_preferences (node_code) WHERE node_code IS NOT NULL",
    # the same definitions as core.notifications.feed_clock.FUNCTIONS with shift 0
    """
    CREATE FUNCTION feed_clock() RETURNS bigint LANGUAGE sql VOLATILE
        AS $$ SELECT pg_catalog.pg_current_xact_id()::text::bigint + 0 $$
    """,
    """
    CREATE FUNCTION feed_horizon() RETURNS bigint LANGUAGE sql STABLE
        AS $$ SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint + 0 $$
    """,
    "ALTER TABLE complaint_events ADD COLUMN feed_key bigint NOT NULL DEFAULT feed_clock()",
    "CREATE INDEX complaint_events_feed_idx ON complaint_events (feed_key, id)",
)
