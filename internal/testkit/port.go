package testkit

import (
	"errors"
	"net"
	"strconv"
)

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago,
// for a server that must be told its port (redis-server, say) rather than
// report the one it took. With offsets, port+o is free too for each o (a
// Redis Cluster node also listens on port+10000). Another process may take
// the port before the server binds it: a caller that can tell tries again.
func FreePort(offsets ...int) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		for _, o := range offsets {
			other, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+o)))
			if err != nil {
				ok = false
				break
			}
			defer other.Close()
		}
		l.Close()
		if ok {
			return port, nil
		}
	}
	return 0, errors.New("no free port with the offsets asked for in 100 tries")
}
