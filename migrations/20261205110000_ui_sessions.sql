-- Dashboard sessions (docs/dashboard.md): a person signs in at /ui/login with an API token; the
-- browser then holds a random session id in an HttpOnly cookie. Only its hash is kept, with
-- the token it came from (a revoked or deleted token ends the session) and the CSRF token every
-- form posts back.
CREATE TABLE ui_sessions (
    hash       bytea PRIMARY KEY,
    token_id   uuid NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX ui_sessions_expires_idx ON ui_sessions (expires_at);
