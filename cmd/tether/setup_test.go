package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tetherauth/tether/internal/testkit/pgtest"
)

// PW-08: two nodes on one account store each print a setup link. A link
// printed by one opens on the other and creates the first admin there,
// once; then no link opens on either node, and the admin signs in on
// both.
func TestServePW08_SetupLinkOpensOnEveryNode(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		data := dbPath(t)
		testSetupAcrossNodes(t, [2]string{data, data}, nil)
	})
	t.Run("postgres", func(t *testing.T) {
		pool, err := pgtest.Schema(t)()
		if err != nil {
			t.Fatal(err)
		}
		data := dbPath(t) // the nodes' sessions, in one file (ADM-01)
		testSetupAcrossNodes(t, [2]string{data, data}, []string{"--accounts", pgtest.URL(t, pool)})
	})
}

// testSetupAcrossNodes runs two nodes on the database files data, with
// flags, and uses the first node's setup link on the second.
func testSetupAcrossNodes(t *testing.T, data [2]string, flags []string) {
	nodes := [2]*testServer{startServe(t, data[0], flags...), startServe(t, data[1], flags...)}
	var links [2]string
	for i, s := range nodes {
		m := setupRE.FindStringSubmatch(s.stdout.String())
		if m == nil {
			t.Fatalf("node %d: got stdout %q, want a setup link", i, s.stdout)
		}
		links[i] = m[2]
	}
	if status := nodes[1].setup(t, links[0], "root"); status != http.StatusSeeOther {
		t.Fatalf("node 0's link on node 1: got %d, want 303 (the admin created)", status)
	}
	for _, tc := range []struct {
		node, link int
	}{{1, 0}, {0, 0}, {0, 1}, {1, 1}} {
		if res := nodes[tc.node].do(t, "GET", links[tc.link], "", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("node %d's link on node %d once an admin exists: got %s, want 404", tc.link, tc.node, res.Status)
		}
	}
	for _, s := range nodes {
		s.signIn(t, `{"username":"root","password":"`+alicePassword+`"}`)
	}
}

// setup opens the setup link path on s and submits its form, creating
// the admin name with alicePassword; it returns the status of the form's
// answer.
func (s *testServer) setup(t *testing.T, path, name string) int {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v; want the setup form", path, res.Status, err)
	}
	_, after, _ := strings.Cut(string(page), `name="csrf_token" value="`)
	csrfToken, _, ok := strings.Cut(after, `"`)
	if !ok {
		t.Fatalf("no csrf_token in the setup form:\n%s", page)
	}
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"csrf_token": {csrfToken}, "token": {u.Query().Get("token")},
		"username": {name}, "password": {alicePassword}, "confirm": {alicePassword}}
	req, err := http.NewRequestWithContext(t.Context(), "POST", s.url+"/setup", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range res.Cookies() { // by hand: a jar keeps __Host- cookies away from http://
		req.AddCookie(c)
	}
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
