package faultnet_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tetherauth/tether/storetest/faultnet"
)

// echo starts a line echo server and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string) (string, error) {
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestModes(t *testing.T) {
	p, err := faultnet.Listen(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "a"); err != nil || got != "a\n" {
		t.Fatalf("Pass: got %q, %v; want %q", got, err, "a\n")
	}

	// Blackhole: the write succeeds, no answer comes; healing delivers it.
	p.Set(faultnet.Blackhole)
	if _, err := c.Write([]byte("b\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if got, err := r.ReadString('\n'); err == nil {
		t.Fatalf("Blackhole: got answer %q, want none", got)
	}
	c.SetReadDeadline(time.Time{})
	p.Set(faultnet.Pass)
	if got, err := r.ReadString('\n'); err != nil || got != "b\n" {
		t.Fatalf("healed: got %q, %v; want %q", got, err, "b\n")
	}

	// Refuse: open connections close, new ones are closed at once.
	p.Set(faultnet.Refuse)
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("Refuse: open connection still readable")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		if _, err := roundTrip(c2, bufio.NewReader(c2), "c"); err == nil {
			t.Fatal("Refuse: new connection answered")
		}
		c2.Close()
	}

	p.Set(faultnet.Pass)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, bufio.NewReader(c3), "d"); err != nil || got != "d\n" {
		t.Fatalf("Pass again: got %q, %v", got, err)
	}
}
