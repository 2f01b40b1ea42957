-- Failure counts, as in the SQLite throttle (sqlite.go).
CREATE TABLE login_failures (
	key          text COLLATE "C" PRIMARY KEY,
	count        bigint NOT NULL,
	last_failure timestamptz NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_failure);
