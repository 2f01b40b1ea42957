-- What the store keeps for machines (issue 11), as in the SQLite store
-- (sqlite.go), with the same statements (machines.go): OAuth 2.0 clients,
-- personal access tokens, and the signing keys with their ring's version.
-- Ids compare byte by byte, as in 0001. Sets of strings are JSON arrays in
-- text, as SQLite keeps them, so that both read them the same way.
CREATE TABLE clients (
	id          text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[a-z0-9._-]{1,64}$'),
	secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
	scopes      text NOT NULL, -- a JSON array of strings, sorted, no duplicates
	audiences   text NOT NULL, -- the same
	max_ttl     bigint NOT NULL CHECK (max_ttl >= 0), -- nanoseconds
	disabled    boolean NOT NULL,
	created     timestamptz NOT NULL
);

-- A user's tokens go with the user, in Delete's transaction.
CREATE TABLE pats (
	id        text COLLATE "C" PRIMARY KEY,
	user_id   text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name      text NOT NULL,
	hash      bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
	scopes    text NOT NULL, -- as in clients
	created   timestamptz NOT NULL,
	expires   timestamptz NOT NULL,
	last_used timestamptz, -- NULL: never used
	gen       bigint NOT NULL CHECK (gen >= 0) -- the user's token generation when it was made
);
CREATE INDEX pats_user ON pats (user_id, created);

-- The durable copy of the token denylist's jti entries (Revocations).
CREATE TABLE revoked_tokens (
	jti text COLLATE "C" PRIMARY KEY,
	exp timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_exp ON revoked_tokens (exp);

CREATE TABLE signing_keys (
	kid        text COLLATE "C" PRIMARY KEY,
	alg        text NOT NULL,
	private    bytea NOT NULL,
	sealed     boolean NOT NULL,
	created    timestamptz NOT NULL,
	sign_from  timestamptz NOT NULL,
	sign_until timestamptz, -- NULL: no end planned
	remove_at  timestamptz  -- the same
);

CREATE TABLE key_ring (
	one     boolean PRIMARY KEY CHECK (one),
	version bigint NOT NULL -- no row: never saved, version 0
);
