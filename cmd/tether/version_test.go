package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build information", nil, "tether (devel) " + runtime.Version() + " linux/amd64"},
		{"no version", &debug.BuildInfo{GoVersion: "go1.26.0"}, "tether (devel) go1.26.0 linux/amd64"},
		{"go build in a checkout without VCS information", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}},
			"tether (devel) go1.26.0 linux/amd64"},
		{"go install of a release", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}},
			"tether v1.2.3 go1.26.0 linux/amd64"},
		{"go build in a clean checkout", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.0.0-20261206040455-c40b37644ca2"},
			Settings: vcs("vcs", "git", "vcs.revision", "c40b37644ca239f6222f76f9cc09410d70b6d1bd", "vcs.modified", "false")},
			"tether v0.0.0-20261206040455-c40b37644ca2 (revision c40b37644ca239f6222f76f9cc09410d70b6d1bd) go1.26.0 linux/amd64"},
		{"go build with changes", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "c40b376", "vcs.modified", "true")},
			"tether (devel) (revision c40b376, modified) go1.26.0 linux/amd64"},
	}
	for _, tt := range tests {
		if got := versionLine(tt.bi, "linux/amd64"); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// tether version and tether --version print one line on standard output.
func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := mustTether(t, "", "", args...)
		if !strings.HasPrefix(out, "tether ") || !strings.HasSuffix(out, " "+runtime.GOOS+"/"+runtime.GOARCH+"\n") || strings.Count(out, "\n") != 1 {
			t.Errorf("tether %q: got %q, want one line: tether, the version, the Go version and the platform", args, out)
		}
	}
}
