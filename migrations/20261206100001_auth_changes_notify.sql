-- The API caches who each token belongs to (src/api/token_cache.rs) and empties the cache on
-- every notice on `workhorse_auth`: a token revoked, re-hashed or moved, a user's role or plan
-- changed, a token or user deleted. Statement-level, so a bulk change sends one notice, and
-- NOTIFY folds identical notices of one transaction into one. `last_used_at` and the other
-- columns do not touch a caller and do not notify.
CREATE FUNCTION auth_changed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workhorse_auth', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_auth_changed
    AFTER UPDATE OF revoked_at, token_hash, user_id OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION auth_changed_notify();

CREATE TRIGGER users_auth_changed
    AFTER UPDATE OF role, plan, id OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION auth_changed_notify();
