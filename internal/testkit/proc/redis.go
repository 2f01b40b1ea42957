package proc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// NeedRedis returns the path of redis-server, or skips the test without
// it (fails it when services are required: see testkit.NeedService).
func NeedRedis(t testing.TB) string {
	t.Helper()
	bin, err := LookPath("redis-server", "/usr/bin/redis-server")
	testkit.NeedService(t, "redis-server (Debian package redis-server)", err)
	return bin
}

// StartRedis starts redis-server (bin) as name on a free port of
// 127.0.0.1 (whose cluster bus port, port+10000, is free too), in the foreground, with args first on its command line (a
// configuration file, if any, must come first), and waits until it
// answers PING. It returns the process and its address. A port taken
// before the server could bind it is tried again with another, up to
// three times.
func (r *Run) StartRedis(name, bin string, args ...string) (*Proc, string, error) {
	var err error
	for range 3 {
		var port int
		if port, err = testkit.FreePort(10000); err != nil {
			return nil, "", err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var p *Proc
		if p, err = r.StartRedisAt(name, bin, addr, args...); err == nil {
			return p, addr, nil
		}
		if p == nil || !p.Exited() {
			break
		}
	}
	return nil, "", err
}

// StartRedisAt is StartRedis on a given address, tried once. If the
// server exits before it answers, it returns the exited process with the
// error.
func (r *Run) StartRedisAt(name, bin, addr string, args ...string) (*Proc, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := r.Start(name, bin, append(args, "--port", port, "--bind", "127.0.0.1", "--daemonize", "no")...)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(StartTimeout)
	for {
		err := RedisPing(addr)
		if err == nil {
			return p, nil
		}
		if p.Exited() {
			p.MarkStopped() // it failed to start: the caller says so
			return p, fmt.Errorf("%s (redis-server on %s) exited: %v\n%s", name, addr, p.err, p.Tail(20))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s (redis-server on %s): no PONG within %v: %v\n%s", name, addr, StartTimeout, err, p.Tail(20))
		}
		time.Sleep(PollEvery)
	}
}

// RedisPing sends PING to the Redis (or Sentinel) at addr and checks
// that it answers PONG.
func RedisPing(addr string) error {
	pong, err := RedisDo(addr, "PING")
	if err == nil && pong != "PONG" {
		err = fmt.Errorf("PING to %s answered %q", addr, pong)
	}
	return err
}

// RedisDo sends one command to the Redis (or Sentinel) at addr and returns
// its answer: a simple or bulk string, or an integer, as a string; a nil
// answer is "". A connection closed without an answer, as after SHUTDOWN,
// is an empty answer too. An error answer is an error.
func RedisDo(addr string, args ...string) (string, error) {
	v, err := redisCall(addr, args)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("redis %s: got an array, want one value", args[0])
}

// RedisStrings is RedisDo for a command answered with an array of
// strings, or nil.
func RedisStrings(addr string, args ...string) ([]string, error) {
	v, err := redisCall(addr, args)
	if err != nil || v == nil {
		return nil, err
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("redis %s: got %q, want an array", args[0], v)
	}
	out := make([]string, len(a))
	for i, e := range a {
		if out[i], ok = e.(string); !ok && e != nil {
			return nil, fmt.Errorf("redis %s: element %d is not a string", args[0], i)
		}
	}
	return out, nil
}

// redisCall sends args as one command to addr, and reads its answer.
func redisCall(addr string, args []string) (any, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, err
	}
	v, err := readReply(bufio.NewReader(conn), true)
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	return v, err
}

// readReply reads one RESP2 answer: a string, nil or an array of those
// ([]any). first says that an end of stream before the answer is io.EOF,
// an empty answer; anywhere else it is an error.
func readReply(br *bufio.Reader, first bool) (any, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if first && errors.Is(err, io.EOF) && line == "" {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("redis: reading the answer: %w", noEOF(err))
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty line in the answer")
	}
	switch line[0] {
	case '-':
		return nil, fmt.Errorf("redis: %s", line[1:])
	case '+', ':':
		return line[1:], nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < -1 {
			return nil, fmt.Errorf("redis: bad bulk length %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("redis: reading the answer: %w", noEOF(err))
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < -1 {
			return nil, fmt.Errorf("redis: bad array length %q", line)
		}
		if n == -1 {
			return nil, nil
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = readReply(br, false); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	return nil, fmt.Errorf("redis: unexpected answer %q", line)
}

// noEOF turns an end of stream in the middle of an answer into an
// unexpected one.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
