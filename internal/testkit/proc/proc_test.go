package proc

import (
	"testing"
)

// A redis-server told to stop while it writes its first append-only file
// refuses that SIGTERM and never retries; Stop sends it again until the
// file is written, instead of waiting StopTimeout and reporting a kill (a
// CI failure of store/redis's durability test on a loaded machine).
func TestStopRedisWritingItsFirstAOF(t *testing.T) {
	bin := NeedRedis(t)
	run := NewRun(t, "tether-proc-")
	// Each key the rewrite writes takes 0.5 s: three keys hold the
	// rewrite, and with it the refusal, for 1.5 s.
	p, addr, err := run.StartRedis("redis", bin, "--dir", run.Dir, "--save", "", "--appendonly", "no", "--rdb-key-save-delay", "500000")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, err := RedisDo(addr, "SET", k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := RedisDo(addr, "CONFIG", "SET", "appendonly", "yes"); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop during the first AOF rewrite: %v", err)
	}
	if !p.Exited() {
		t.Fatal("Stop returned with redis-server still running")
	}
}
