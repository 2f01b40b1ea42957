package main

import (
	"errors"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pgConnectTimeout bounds connecting to PostgreSQL (TCP, TLS and the
// startup exchange) when the URL's connect_timeout doesn't: pgx's
// default, none, lets a request wait for as long as a partition lasts.
const pgConnectTimeout = 5 * time.Second

// pgKeepAlive is how TCP keepalives probe PostgreSQL connections: a
// connection whose peer vanished without a word (a partition, a host
// gone) is closed after about Idle + Count×Interval = 15 s of silence,
// instead of Linux's default of over two hours.
var pgKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 2}

// errPoolURL is the error of a PostgreSQL URL pgx can't parse. pgx's own
// error repeats the URL (password hidden); this one doesn't repeat it at
// all, so that nothing of it reaches a log.
var errPoolURL = errors.New("not a PostgreSQL URL pgx can parse: postgres://user[:password]@host[:port]/db[?param=value...]")

// poolConfig parses a postgres:// URL into a pool configuration with the
// connect timeout (the URL's connect_timeout in seconds when given and not
// 0, else pgConnectTimeout) and keepalives (pgKeepAlive) set (MISC-05).
// Queries are bounded by their callers' contexts (the store timeouts).
func poolConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errPoolURL
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout <= 0 {
		cc.ConnectTimeout = pgConnectTimeout
	}
	d := &net.Dialer{Timeout: cc.ConnectTimeout, KeepAliveConfig: pgKeepAlive}
	cc.DialFunc = d.DialContext // the fallback hosts' too
	return cfg, nil
}
