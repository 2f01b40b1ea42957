package testkit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a new directory, unmounted
// when the test ends, for a test that fills a disk. Mounting needs root:
// without it the test skips; when the mount fails it skips too, or fails
// with TETHER_TEST_REQUIRE_SERVICES=1 (see NeedService). Open files on it
// must be closed by cleanups registered after SmallDisk returns.
func SmallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting a small tmpfs (a disk to fill) needs root")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	NeedService(t, "a tmpfs mount", err)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// FillDisk writes a file in dir until its disk is full, and returns a
// function that removes it.
func FillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); errors.Is(err, syscall.ENOSPC) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// ErrDiskFull is the error of every write to FullWriter.
var ErrDiskFull = errors.New("write: no space left on device")

// FullWriter is an io.Writer that refuses every write with ErrDiskFull,
// like a file on a full disk.
type FullWriter struct{}

func (FullWriter) Write([]byte) (int, error) { return 0, ErrDiskFull }
