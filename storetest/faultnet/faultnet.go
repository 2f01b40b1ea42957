// Package faultnet is a TCP proxy that tests control, to put a network
// fault between a client and a server without iptables: the connection
// refused, or a partition that drops every byte and answers nothing (a
// blackhole, which is what a cut cable or a dropped route looks like to
// the client: its writes succeed and no answer ever comes).
//
//	p, err := faultnet.Listen("127.0.0.1:6379") // the real server
//	defer p.Close()
//	client := dial(p.Addr())                     // the client goes through p
//	p.Set(faultnet.Blackhole)                    // partitioned: nothing passes
//	p.Set(faultnet.Pass)                         // healed
//
// Only loopback is meant: the proxy listens on 127.0.0.1.
package faultnet

import (
	"net"
	"sync"
	"time"
)

// Mode is what the proxy does with traffic.
type Mode int

const (
	// Pass forwards both ways.
	Pass Mode = iota
	// Refuse closes every connection, open or new, at once: what a server
	// that is down looks like.
	Refuse
	// Blackhole keeps connections open and new ones accepted, but forwards
	// nothing and answers nothing until the mode changes. Like TCP across a
	// partition, what was sent meanwhile arrives once it heals (Pass), if
	// the connection is still open.
	Blackhole
)

// Proxy forwards connections to a target address, subject to its Mode. It
// is safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex // guards the fields below
	mode  Mode
	conns map[*link]struct{}
	wake  chan struct{} // closed and replaced whenever mode changes
	done  bool
	wg    sync.WaitGroup
}

// link is one proxied connection: the client's side and the server's.
type link struct{ client, server net.Conn }

// Listen starts a proxy to target on a free loopback port, in mode Pass.
func Listen(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: make(map[*link]struct{}), wake: make(chan struct{})}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the address clients dial instead of the target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set changes the mode. Refuse closes every open connection.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	close(p.wake)
	p.wake = make(chan struct{})
	if m == Refuse {
		for l := range p.conns {
			l.close()
		}
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.done = true
	for l := range p.conns {
		l.close()
	}
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (l *link) close() {
	l.client.Close()
	if l.server != nil {
		l.server.Close()
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve proxies one client connection.
func (p *Proxy) serve(c net.Conn) {
	l := &link{client: c}
	if !p.track(l) {
		c.Close()
		return
	}
	defer p.untrack(l)
	// A blackholed proxy connects nowhere until the mode changes.
	if !p.await() {
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	l.server = s
	closed := p.done || p.mode == Refuse
	p.mu.Unlock()
	if closed {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(s, c) })
	wg.Go(func() { p.pipe(c, s) })
	wg.Wait()
}

// pipe copies src to dst while the mode is Pass; under Blackhole it holds
// what it read until the mode changes. It returns when either side is
// closed, or the mode becomes Refuse.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.await() {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// await waits while the mode is Blackhole, and reports whether it is Pass
// (not Refuse, and the proxy not closed).
func (p *Proxy) await() bool {
	for {
		p.mu.Lock()
		m, wake, done := p.mode, p.wake, p.done
		p.mu.Unlock()
		switch {
		case done || m == Refuse:
			return false
		case m == Pass:
			return true
		}
		<-wake
	}
}

func (p *Proxy) track(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done || p.mode == Refuse {
		return false
	}
	p.conns[l] = struct{}{}
	return true
}

func (p *Proxy) untrack(l *link) {
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
	l.close()
}
