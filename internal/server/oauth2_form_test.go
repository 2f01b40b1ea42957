package server

import (
	"encoding/base64"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

const formType = "application/x-www-form-urlencoded"

var parseOAuthFormTests = []struct {
	name        string
	contentType string
	body        string
	want        string // the form's parameters, name=value joined by & in name order; "" for none
	err         bool
}{
	{"grant", formType, "grant_type=client_credentials&scope=a+b", "grant_type=client_credentials&scope=a b", false},
	{"charset", formType + "; charset=UTF-8", "a=1", "a=1", false},
	{"percent-encoding", formType, "client_id=a%2Fb&secret=%C3%A9", "client_id=a/b&secret=é", false},
	{"empty value is absent", formType, "scope=&a=1", "a=1", false},
	{"empty body", formType, "", "", false},
	{"resource twice", formType, "resource=x&resource=y", "resource=x&resource=y", false},
	{"JSON", "application/json", `{"a":1}`, "", true},
	{"no content type", "", "a=1", "", true},
	{"multipart", "multipart/form-data; boundary=x", "a=1", "", true},
	{"other charset", formType + "; charset=latin1", "a=1", "", true},
	{"other parameter", formType + "; x=y", "a=1", "", true},
	{"malformed content type", formType + ";;", "a=1", "", true},
	{"parameter twice", formType, "grant_type=a&grant_type=a", "", true},
	{"parameter twice, once empty", formType, "scope=&scope=a", "", true},
	{"bad escape", formType, "a=%zz", "", true},
	{"semicolon", formType, "a=1;b=2", "", true},
	{"invalid UTF-8 value", formType, "a=%ff", "", true},
	{"invalid UTF-8 name", formType, "%ff=1", "", true},
	{"too large", formType, "a=" + strings.Repeat("x", maxOAuthBody), "", true},
}

func TestParseOAuthForm(t *testing.T) {
	for _, tc := range parseOAuthFormTests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseOAuthForm(tc.contentType, strings.NewReader(tc.body))
			if tc.err {
				var p *problem
				if !errors.As(err, &p) || p.code != codeInvalidRequest {
					t.Fatalf("got %v, want an invalid_request problem", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := formString(f); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// formString writes f as name=value pairs in name order, unescaped.
func formString(f oauthForm) string {
	var pairs []string
	for _, name := range slices.Sorted(maps.Keys(f)) {
		for _, v := range f[name] {
			pairs = append(pairs, name+"="+v)
		}
	}
	return strings.Join(pairs, "&")
}

func FuzzParseOAuthForm(f *testing.F) {
	for _, tc := range parseOAuthFormTests {
		f.Add(tc.contentType, tc.body)
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		form, err := parseOAuthForm(contentType, strings.NewReader(body))
		if err != nil {
			var p *problem
			if !errors.As(err, &p) || p.code != codeInvalidRequest {
				t.Fatalf("error %v is not an invalid_request problem", err)
			}
			return
		}
		if len(body) > maxOAuthBody {
			t.Fatalf("a body of %d bytes was accepted", len(body))
		}
		for name, vs := range form {
			if len(vs) == 0 || len(vs) > 1 && name != "resource" || !utf8.ValidString(name) {
				t.Fatalf("parameter %q: %q", name, vs)
			}
			for _, v := range vs {
				if v == "" || !utf8.ValidString(v) {
					t.Fatalf("parameter %q: value %q", name, v)
				}
			}
		}
	})
}

var clientAuthTests = []struct {
	name          string
	authorization []string
	form          oauthForm
	want          clientCreds
	code          string // the refusal's; "" for none
}{
	{"Basic", []string{basic("billing", "s3cret")}, nil, clientCreds{id: "billing", secret: "s3cret", basic: true}, ""},
	{"Basic, encoded", []string{basic("a:b", "p&q=r s%")}, nil, clientCreds{id: "a:b", secret: "p&q=r s%", basic: true}, ""},
	{"Basic, plus is space", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("id:a+b"))}, nil, clientCreds{id: "id", secret: "a b", basic: true}, ""},
	{"basic, lower case", []string{"basic " + base64.StdEncoding.EncodeToString([]byte("id:x"))}, nil, clientCreds{id: "id", secret: "x", basic: true}, ""},
	{"Basic and the same client_id", []string{basic("billing", "s")}, oauthForm{"client_id": {"billing"}}, clientCreds{id: "billing", secret: "s", basic: true}, ""},
	{"form", nil, oauthForm{"client_id": {"billing"}, "client_secret": {"s"}}, clientCreds{id: "billing", secret: "s"}, ""},
	{"nothing", nil, nil, clientCreds{}, codeInvalidClient},
	{"form, no secret", nil, oauthForm{"client_id": {"billing"}}, clientCreds{}, codeInvalidClient},
	{"form, no id", nil, oauthForm{"client_secret": {"s"}}, clientCreds{}, codeInvalidRequest},
	{"Basic and client_secret", []string{basic("billing", "s")}, oauthForm{"client_secret": {"s"}}, clientCreds{}, codeInvalidRequest},
	{"Basic and another client_id", []string{basic("billing", "s")}, oauthForm{"client_id": {"other"}}, clientCreds{}, codeInvalidRequest},
	{"two headers", []string{basic("a", "b"), basic("a", "b")}, nil, clientCreds{}, codeInvalidRequest},
	{"Bearer", []string{"Bearer abc"}, nil, clientCreds{}, codeInvalidClient},
	{"no scheme", []string{"abc"}, nil, clientCreds{}, codeInvalidClient},
	{"not base64", []string{"Basic !!!"}, nil, clientCreds{}, codeInvalidClient},
	{"base64 unpadded", []string{"Basic " + base64.RawStdEncoding.EncodeToString([]byte("id:xy"))}, nil, clientCreds{}, codeInvalidClient},
	{"no colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("idsecret"))}, nil, clientCreds{}, codeInvalidClient},
	{"empty id", []string{basic("", "s")}, nil, clientCreds{}, codeInvalidClient},
	{"empty secret", []string{basic("id", "")}, nil, clientCreds{}, codeInvalidClient},
	{"bad escape", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("id:%zz"))}, nil, clientCreds{}, codeInvalidClient},
	{"invalid UTF-8", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("id:%ff"))}, nil, clientCreds{}, codeInvalidClient},
}

func TestClientAuth(t *testing.T) {
	for _, tc := range clientAuthTests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := clientAuth(tc.authorization, tc.form)
			var p *problem
			switch {
			case tc.code == "" && err != nil:
				t.Fatal(err)
			case tc.code != "" && (!errors.As(err, &p) || p.code != tc.code):
				t.Fatalf("got %v, want %s", err, tc.code)
			case got != tc.want:
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzClientAuth(f *testing.F) {
	for _, tc := range clientAuthTests {
		h := ""
		if len(tc.authorization) > 0 {
			h = tc.authorization[0]
		}
		f.Add(h, tc.form.get("client_id"), tc.form.get("client_secret"))
	}
	f.Fuzz(func(t *testing.T, header, id, secret string) {
		var hdr []string
		if header != "" {
			hdr = []string{header}
		}
		form := oauthForm{}
		if id != "" {
			form["client_id"] = []string{id}
		}
		if secret != "" {
			form["client_secret"] = []string{secret}
		}
		c, err := clientAuth(hdr, form)
		if err != nil {
			var p *problem
			if !errors.As(err, &p) || p.code != codeInvalidClient && p.code != codeInvalidRequest {
				t.Fatalf("error %v is neither invalid_client nor invalid_request", err)
			}
			return
		}
		if c.id == "" || c.secret == "" || c.basic != (header != "") {
			t.Fatalf("credentials %+v from %q, %q, %q", c, header, id, secret)
		}
		if c.basic && (secret != "" || id != "" && id != c.id || !utf8.ValidString(c.id) || !utf8.ValidString(c.secret)) {
			t.Fatalf("Basic credentials %+v accepted with form %q, %q", c, id, secret)
		}
	})
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		scope string
		want  []string
		err   bool
	}{
		{"", nil, false},
		{"a", []string{"a"}, false},
		{"b a b", []string{"a", "b"}, false},
		{"urn:x!#[]~", []string{"urn:x!#[]~"}, false},
		{"a  b", nil, true},
		{" a", nil, true},
		{"a ", nil, true},
		{"a\tb", nil, true},
		{`a"b`, nil, true},
		{`a\b`, nil, true},
		{"é", nil, true},
	} {
		got, err := parseScope(tc.scope)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("parseScope(%q) = %q, %v; want %q, error %v", tc.scope, got, err, tc.want, tc.err)
		}
	}
}

func TestPossibleClient(t *testing.T) {
	for _, tc := range []struct {
		c    clientCreds
		want bool
	}{
		{clientCreds{id: "billing-2.x_y", secret: "s"}, true},
		{clientCreds{id: strings.Repeat("a", 64), secret: strings.Repeat("s", maxSecret)}, true},
		{clientCreds{id: strings.Repeat("a", 65), secret: "s"}, false},
		{clientCreds{id: "a", secret: strings.Repeat("s", maxSecret+1)}, false},
		{clientCreds{id: "Billing", secret: "s"}, false},
		{clientCreds{id: "a b", secret: "s"}, false},
		{clientCreds{id: " billing", secret: "s"}, false},
		{clientCreds{id: "billing\n", secret: "s"}, false},
		{clientCreds{id: "ｂilling", secret: "s"}, false}, // a fullwidth b, which folding would turn into b
		{clientCreds{id: "", secret: "s"}, false},
	} {
		if got := possibleClient(tc.c); got != tc.want {
			t.Errorf("possibleClient(%+v) = %v, want %v", tc.c, got, tc.want)
		}
	}
}
