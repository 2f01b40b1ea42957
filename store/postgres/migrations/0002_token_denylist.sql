-- The token denylist (Store.RevokeToken): one row per revoked token (jti)
-- or subject (its generation), never both (the other is ''), kept until
-- exp; DeleteExpired forgets the rest. Ids compare byte by byte, as
-- session ids do.
CREATE TABLE token_denylist (
	jti     text COLLATE "C" NOT NULL,
	subject text COLLATE "C" NOT NULL,
	gen     bigint NOT NULL,
	exp     timestamptz NOT NULL,
	PRIMARY KEY (jti, subject),
	CHECK ((jti = '') <> (subject = ''))
);
CREATE INDEX token_denylist_exp ON token_denylist (exp);
