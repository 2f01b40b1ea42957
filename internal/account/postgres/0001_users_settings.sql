-- Users and the server's secrets, as in the SQLite store (sqlite.go).
-- Names are canonical (account.CanonicalName) and compared and ordered
-- byte by byte, as SQLite does: hence COLLATE "C", whatever the database's
-- default collation.
CREATE TABLE users (
	id            text COLLATE "C" PRIMARY KEY,
	name          text COLLATE "C" NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9._@+-]{1,64}$'),
	password_hash text NOT NULL,
	admin         boolean NOT NULL,
	disabled      boolean NOT NULL,
	created       timestamptz NOT NULL
);

CREATE TABLE settings (
	name  text COLLATE "C" PRIMARY KEY,
	value bytea NOT NULL
);
