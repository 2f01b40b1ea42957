-- Sessions and the users' generations, as in the SQLite store (sqlite.go).
-- Ids compare byte by byte, as in SQLite: hence COLLATE "C", whatever the
-- database's default collation. The user agent is bytea: a browser may send
-- bytes that are not UTF-8, which text refuses.
CREATE TABLE sessions (
	hash          bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
	id            text COLLATE "C" NOT NULL UNIQUE,
	user_id       text COLLATE "C" NOT NULL,
	gen           bigint NOT NULL,
	version       bigint NOT NULL,
	created       timestamptz NOT NULL,
	last_seen     timestamptz NOT NULL,
	idle_deadline timestamptz NOT NULL,
	abs_deadline  timestamptz NOT NULL,
	expiry        timestamptz NOT NULL, -- the earlier deadline, for DeleteExpired
	user_agent    bytea NOT NULL,
	ip            text NOT NULL,
	data          bytea NOT NULL        -- package datacodec's encoding
);
-- List's order; the hash breaks ties.
CREATE INDEX sessions_user ON sessions (user_id, created, hash);
CREATE INDEX sessions_expiry ON sessions (expiry);

-- Each revoked user's generation; a user without a row is at generation 0.
CREATE TABLE session_generations (
	user_id text COLLATE "C" PRIMARY KEY,
	gen     bigint NOT NULL
);
