//go:build unix

package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tetherauth/tether/internal/testkit/storekit"
	"github.com/tetherauth/tether/session"
)

// withUmask runs the test under umask mask (process-wide: no test of this
// package runs in parallel), so that what it checks doesn't depend on the
// umask of whoever runs it.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// writeOnce opens the database at path and writes to it, so that SQLite
// has created its -wal and -shm files; they stay while db is open.
func writeOnce(t *testing.T, path string) {
	t.Helper()
	s := newTestStore(t, openDB(t, path), Options{})
	if err := s.Create(t.Context(), storekit.Record("alice", 1), session.CreateOptions{}); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// modes returns the permission bits of path and its -wal and -shm files,
// failing the test if one is missing.
func modes(t *testing.T, path string) map[string]os.FileMode {
	t.Helper()
	got := map[string]os.FileMode{}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if err != nil {
			t.Fatalf("the database file%s: %v", suffix, err)
		}
		got["db"+suffix] = fi.Mode().Perm()
	}
	return got
}

// MISC-06: a new database file, and the -wal and -shm files SQLite makes
// next to it, are readable and writable by their owner only, under the
// usual umask 022 that would leave them readable by everyone.
func TestMISC06_NewDatabaseFilesOwnerOnly(t *testing.T) {
	withUmask(t, 0o022)
	path := filepath.Join(t.TempDir(), "tether.db")
	writeOnce(t, path)
	for name, mode := range modes(t, path) {
		if mode != 0o600 {
			t.Errorf("%s: got mode %04o, want 0600", name, mode)
		}
	}
	if err := CheckPermissions(path); err != nil {
		t.Errorf("CheckPermissions of a new database: %v", err)
	}
}

// MISC-06: Open leaves the permissions of an existing file as they are (the
// operator may have chosen them), and CheckPermissions names every file
// other users can read, for the server to warn of.
func TestMISC06_WarnsOfReadableDatabase(t *testing.T) {
	withUmask(t, 0o022)
	path := filepath.Join(t.TempDir(), "tether.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	writeOnce(t, path)
	for name, mode := range modes(t, path) {
		if mode != 0o644 { // SQLite gives -wal and -shm the file's mode
			t.Errorf("%s: got mode %04o, want the existing file's 0644 kept", name, mode)
		}
	}
	err := CheckPermissions(path)
	if !errors.Is(err, ErrLoosePermissions) {
		t.Fatalf("CheckPermissions of a 0644 database: got %v, want %v", err, ErrLoosePermissions)
	}
	for _, want := range []string{path + " has mode 0644", path + "-wal has mode 0644", path + "-shm has mode 0644", "chmod 600"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPermissions: got %q, want it to say %q", err, want)
		}
	}
}

// MISC-06: which modes CheckPermissions warns of, on the file and on each
// of its companions.
func TestMISC06_CheckPermissions(t *testing.T) {
	withUmask(t, 0)
	tests := []struct {
		name    string
		modes   map[string]os.FileMode // by suffix; a missing suffix: no such file
		warnFor []string               // suffixes named in the warning; none: no warning
	}{
		{"owner only", map[string]os.FileMode{"": 0o600, "-wal": 0o600, "-shm": 0o600}, nil},
		{"read-only owner", map[string]os.FileMode{"": 0o400}, nil},
		{"no companions", map[string]os.FileMode{"": 0o600}, nil},
		{"no file at all", map[string]os.FileMode{}, nil},
		{"group reads", map[string]os.FileMode{"": 0o640}, []string{""}},
		{"group writes", map[string]os.FileMode{"": 0o620}, []string{""}},
		{"others read", map[string]os.FileMode{"": 0o604}, []string{""}},
		{"others write", map[string]os.FileMode{"": 0o602}, []string{""}},
		{"wal readable", map[string]os.FileMode{"": 0o600, "-wal": 0o644, "-shm": 0o600}, []string{"-wal"}},
		{"shm readable", map[string]os.FileMode{"": 0o600, "-wal": 0o600, "-shm": 0o666}, []string{"-shm"}},
		{"all readable", map[string]os.FileMode{"": 0o644, "-wal": 0o644, "-shm": 0o644}, []string{"", "-wal", "-shm"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tether.db")
			for suffix, mode := range tc.modes {
				if err := os.WriteFile(path+suffix, nil, mode); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckPermissions(path)
			if len(tc.warnFor) == 0 {
				if err != nil {
					t.Errorf("got %v, want no warning", err)
				}
				return
			}
			if !errors.Is(err, ErrLoosePermissions) {
				t.Fatalf("got %v, want %v", err, ErrLoosePermissions)
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				named := strings.Contains(err.Error(), path+suffix+" has mode")
				if want := slices.Contains(tc.warnFor, suffix); named != want {
					t.Errorf("file%s named: got %v, want %v (%v)", suffix, named, want, err)
				}
			}
		})
	}
}
