// Package proxy starts the reverse proxies of tether's end-to-end tests,
// nginx and Caddy from Debian's packages (and the application behind
// them, examples/upstream), with a configuration of
// examples/ filled in for the test: each listens on a free port of
// 127.0.0.1 and runs as one process of the test's proc.Run, so nothing
// outlives the test. It is shared by the packages under e2e/ and holds no
// test of its own.
//
//	bin := proxy.NeedNginx(t) // skips, or fails under TETHER_TEST_REQUIRE_SERVICES=1
//	app := proxy.Upstream(t, run) // examples/upstream, for the forward-auth examples
//	lb := proxy.Nginx(t, run, client, bin, "../../examples/nginx/nginx.conf.tmpl",
//		map[string]any{"Upstreams": addrs}, "/healthz", 200)
//	client.Must(t, 200, "GET", lb.URL+"/api/v1/me", device, nil)
//
// The template's data gains Listen, the address to listen on
// (127.0.0.1:PORT), its ListenHost and ListenPort, and Dir, the proxy's
// own directory in the run's.
package proxy

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// A Server is a running proxy.
type Server struct {
	*proc.Proc
	Listen string // 127.0.0.1:PORT
	URL    string // http://Listen
}

// NeedNginx returns the path of nginx, or skips t without it (fails under
// TETHER_TEST_REQUIRE_SERVICES=1).
func NeedNginx(t testing.TB) string {
	t.Helper()
	bin, err := proc.LookPath("nginx", "/usr/sbin/nginx")
	testkit.NeedService(t, "nginx (apt-get install -y nginx)", err)
	return bin
}

// NeedCaddy returns the path of caddy, or skips t without it (fails under
// TETHER_TEST_REQUIRE_SERVICES=1).
func NeedCaddy(t testing.TB) string {
	t.Helper()
	bin, err := proc.LookPath("caddy", "/usr/bin/caddy")
	testkit.NeedService(t, "caddy (apt-get install -y caddy)", err)
	return bin
}

// Nginx starts nginx (bin) as "nginx" in run with the configuration of the
// template tmpl, filled with data, and returns once GET ready answers
// want through it. It runs as one process (master_process off), so that
// nothing outlives the test if the test is killed (see package proc);
// relative paths in the configuration are in its directory (-p).
func Nginx(t testing.TB, run *proc.Run, c *web.Client, bin, tmpl string, data map[string]any, ready string, want int) *Server {
	t.Helper()
	return start(t, run, c, "nginx", tmpl, data, ready, want, func(dir, conf string) (string, []string, []string) {
		return bin, nil, []string{"-p", dir, "-c", conf, "-e", "stderr", "-g", "daemon off; master_process off;"}
	})
}

// Caddy starts caddy (bin) as "caddy" in run with the Caddyfile of the
// template tmpl, filled with data, and returns once GET ready answers
// want through it. The Caddyfile should turn the admin endpoint and automatic
// HTTPS off, and keep Caddy's storage in Dir.
func Caddy(t testing.TB, run *proc.Run, c *web.Client, bin, tmpl string, data map[string]any, ready string, want int) *Server {
	t.Helper()
	return start(t, run, c, "caddy", tmpl, data, ready, want, func(dir, conf string) (string, []string, []string) {
		// Caddy saves the configuration it runs in XDG_CONFIG_HOME.
		env := []string{"XDG_CONFIG_HOME=" + dir, "XDG_DATA_HOME=" + dir}
		return bin, env, []string{"run", "--adapter", "caddyfile", "--config", conf}
	})
}

// start writes the configuration and starts the proxy called name with
// the command (and environment) command returns for its directory and
// configuration file,
// on another free port if the one it was given was taken before it bound
// it.
func start(t testing.TB, run *proc.Run, c *web.Client, name, tmpl string, data map[string]any,
	ready string, want int, command func(dir, conf string) (bin string, env, args []string)) *Server {
	t.Helper()
	parsed, err := template.ParseFiles(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(run.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, strings.TrimSuffix(filepath.Base(tmpl), ".tmpl"))
	filled := map[string]any{"Dir": dir}
	for k, v := range data {
		filled[k] = v
	}
	for range 3 { // a free port may be taken before the proxy binds it
		port, err := testkit.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		listen := "127.0.0.1:" + strconv.Itoa(port)
		filled["Listen"], filled["ListenHost"], filled["ListenPort"] = listen, "127.0.0.1", port
		var b bytes.Buffer
		if err := parsed.Execute(&b, filled); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		bin, env, args := command(dir, conf)
		p, err := run.StartEnv(name, env, bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		s := &Server{Proc: p, Listen: listen, URL: "http://" + listen}
		if err = c.WaitStatus(p, s.URL+ready, want); err == nil {
			return s
		}
		if !p.Exited() {
			t.Fatal(err)
		}
		p.MarkStopped()
		t.Logf("%s on %s: %v; trying another port", name, listen, err)
	}
	t.Fatalf("%s did not start on any of 3 free ports", name)
	return nil
}

// Upstream builds examples/upstream (the application behind the
// forward-auth examples) into run's directory, starts it on a free port
// of 127.0.0.1, and returns its address (127.0.0.1:PORT).
func Upstream(t testing.TB, run *proc.Run) string {
	t.Helper()
	bin := proc.Build(t, run.Dir, "upstream", "github.com/tetherauth/tether/examples/upstream")
	p, err := run.Start("upstream", bin, "-addr", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url, err := p.Listening()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(url, "http://")
}
