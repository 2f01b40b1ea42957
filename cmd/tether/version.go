package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version prints tether's version, the VCS revision it was built from and
// the Go version, from the build information the go command stamps into
// the binary (go build, go install and go run alike).
func version(_ context.Context, e *env, fs *flag.FlagSet, args []string) error {
	if _, err := e.parseNoArgs(fs, args); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(e.stdout, versionLine(bi, runtime.GOOS+"/"+runtime.GOARCH))
	return nil
}

// versionLine describes the build bi (nil when the binary carries no build
// information) for the platform: the main module's version, "(devel)"
// when there is none; the VCS revision and whether the tree had changes
// not committed, when the go command recorded them; and the Go version.
func versionLine(bi *debug.BuildInfo, platform string) string {
	v, goVersion, revision, modified := "(devel)", runtime.Version(), "", ""
	if bi != nil {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				revision = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				modified = ", modified"
			}
		}
	}
	line := "tether " + v
	if revision != "" {
		line += " (revision " + revision + modified + ")"
	}
	return line + " " + goVersion + " " + platform
}
