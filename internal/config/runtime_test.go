package config

import (
	"fmt"
	"math"
	"runtime/debug"
	"testing"
)

func TestParseMemoryMax(t *testing.T) {
	for in, want := range map[string]int64{
		"536870912\n":           536870912,
		"max\n":                 0, // cgroup v2: no limit
		"9223372036854771712\n": 0, // cgroup v1: no limit
		"":                      0,
		"-1":                    0,
		"lots":                  0,
	} {
		if got := parseMemoryMax(in); got != want {
			t.Errorf("parseMemoryMax(%q) = %d, want %d", in, got, want)
		}
	}
}

// restoreGC puts the runtime's GC settings back after a test changed them.
func restoreGC(t *testing.T) {
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	})
}

func TestTuneRuntime(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	const gib = 1 << 30

	t.Run("cgroup limit: 80% of it, GOGC 400", func(t *testing.T) {
		restoreGC(t)
		debug.SetMemoryLimit(math.MaxInt64)
		got := tuneRuntime(env(nil), func() int64 { return gib })
		if got.Source != "cgroup" || got.MemoryLimit != int64(gib*4/5) || got.GCPercent != TunedGCPercent {
			t.Fatalf("tuning = %+v", got)
		}
		if l := debug.SetMemoryLimit(-1); l != int64(gib*4/5) {
			t.Fatalf("runtime memory limit = %d", l)
		}
		if gc := debug.SetGCPercent(TunedGCPercent); gc != TunedGCPercent {
			t.Fatalf("runtime GOGC = %d", gc)
		}
	})
	t.Run("explicit GOGC wins", func(t *testing.T) {
		restoreGC(t)
		debug.SetGCPercent(150)
		got := tuneRuntime(env(map[string]string{"GOGC": "150"}), func() int64 { return gib })
		if got.GCPercent != -1 || got.MemoryLimit == 0 {
			t.Fatalf("tuning = %+v", got)
		}
		if gc := debug.SetGCPercent(150); gc != 150 {
			t.Fatalf("runtime GOGC = %d, want the environment's 150", gc)
		}
	})
	t.Run("no limit anywhere: nothing changes", func(t *testing.T) {
		restoreGC(t)
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(100)
		got := tuneRuntime(env(nil), func() int64 { return 0 })
		if got.Source != "none" || got.GCPercent != -1 || got.MemoryLimit != 0 {
			t.Fatalf("tuning = %+v", got)
		}
		if gc := debug.SetGCPercent(100); gc != 100 {
			t.Fatalf("runtime GOGC = %d, want 100", gc)
		}
	})
	t.Run("GOMEMLIMIT=off is no limit", func(t *testing.T) {
		restoreGC(t)
		debug.SetMemoryLimit(math.MaxInt64)
		debug.SetGCPercent(100)
		got := tuneRuntime(env(map[string]string{"GOMEMLIMIT": "off"}), func() int64 { return gib })
		if got.MemoryLimit != 0 || got.GCPercent != -1 {
			t.Fatalf("tuning = %+v", got)
		}
	})
}

func TestCgroupLimitFiles(t *testing.T) {
	got := cgroupLimitFiles("12:pids:/x\n4:memory:/process_api/b7b1\n0::/\n")
	want := []string{"/sys/fs/cgroup/memory/process_api/b7b1/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max",
		"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("v1: %v\nwant %v", got, want)
	}
	got = cgroupLimitFiles("0::/system.slice/rollcall.service\n")
	if got[0] != "/sys/fs/cgroup/system.slice/rollcall.service/memory.max" {
		t.Fatalf("v2: %v", got)
	}
	if got := cgroupLimitFiles("0::/../../etc\n"); len(got) != 2 {
		t.Fatalf("a path with .. is used: %v", got)
	}
}
