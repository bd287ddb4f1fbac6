-- Notifications: users' channels and their topics, events, and the delivery outbox. Every
-- delivery is a row written in the transaction of the event that caused it, and is carried out
-- by a `notify` job.

CREATE TABLE channels (
    id              uuid PRIMARY KEY,
    owner_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('webhook', 'fcm', 'webpush')),
    name            text NOT NULL,
    -- webhook: {url}; fcm: {token}; webpush: {endpoint, p256dh, auth}
    target          jsonb NOT NULL,
    -- The webhook signing secret (whsec_...), shown once when the channel is created.
    secret          text,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channels_owner_idx ON channels (owner_id, id DESC);

CREATE TABLE channel_topics (
    channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    topic      text NOT NULL,
    PRIMARY KEY (channel_id, topic)
);
CREATE INDEX channel_topics_topic_idx ON channel_topics (topic);

CREATE TABLE events (
    id            uuid PRIMARY KEY,
    topic         text NOT NULL,
    -- The user the event is about; NULL: every subscribed channel gets it.
    owner_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    payload       jsonb NOT NULL,
    trace_context jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id              uuid PRIMARY KEY,
    event_id        uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    channel_id      uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    owner_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id          uuid NOT NULL,
    -- pending until delivered, dead after the last attempt or when the channel is gone.
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX deliveries_owner_idx ON deliveries (owner_id, id DESC);
CREATE INDEX deliveries_channel_idx ON deliveries (channel_id);

-- The VAPID key pair of this installation (one row; the first daemon to start creates it).
CREATE TABLE vapid_keys (
    id          integer PRIMARY KEY CHECK (id = 1),
    private_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
