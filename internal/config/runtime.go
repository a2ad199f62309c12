package config

import (
	"math"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// GC tuning. Serving a GraphQL page allocates a lot of short-lived memory
// (gqlgen builds a field context per field) while the live heap stays small,
// so at Go's default GOGC=100 the collector runs several times per large page
// and takes a quarter of the CPU. Rollcall raises GOGC, but only under a
// memory limit, so the heap cannot grow without bound: the limit makes the
// collector work harder as the process nears it.
const (
	// TunedGCPercent is the GOGC Rollcall uses under a memory limit.
	TunedGCPercent = 400
	// memoryLimitShare of the container's memory goes to the Go heap
	// target; the rest is stacks, runtime and the kernel's view of RSS.
	memoryLimitShare = 0.8
)

// RuntimeTuning is what TuneRuntime decided, for the start-up log.
type RuntimeTuning struct {
	GCPercent   int    // -1: left as the environment (GOGC) or Go set it
	MemoryLimit int64  // bytes; 0: none
	Source      string // "GOMEMLIMIT", "cgroup" or "none"
}

// TuneRuntime applies the GC policy: an explicit GOGC or GOMEMLIMIT always
// wins (Go reads them itself); otherwise the memory limit is 80% of the
// cgroup's memory limit when there is one, and GOGC becomes 400 when any
// memory limit is in force. Without a limit nothing changes. It reads the
// process's real environment, as the Go runtime does.
func TuneRuntime() RuntimeTuning {
	return tuneRuntime(os.Getenv, cgroupMemoryMax)
}

func tuneRuntime(getenv func(string) string, memoryMax func() int64) RuntimeTuning {
	t := RuntimeTuning{GCPercent: -1, Source: "none"}
	switch {
	case getenv("GOMEMLIMIT") != "":
		// Go applied it at start; "off" reads back as no limit.
		if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
			t.MemoryLimit, t.Source = l, "GOMEMLIMIT"
		}
	default:
		if max := memoryMax(); max > 0 {
			t.MemoryLimit, t.Source = int64(float64(max)*memoryLimitShare), "cgroup"
			debug.SetMemoryLimit(t.MemoryLimit)
		}
	}
	if t.MemoryLimit > 0 && getenv("GOGC") == "" {
		debug.SetGCPercent(TunedGCPercent)
		t.GCPercent = TunedGCPercent
	}
	return t
}

// cgroupMemoryMax is the memory limit of this process's cgroup, or 0 when
// there is none.
func cgroupMemoryMax() int64 {
	self, _ := os.ReadFile("/proc/self/cgroup")
	for _, p := range cgroupLimitFiles(string(self)) {
		if b, err := os.ReadFile(p); err == nil {
			if n := parseMemoryMax(string(b)); n > 0 {
				return n
			}
		}
	}
	return 0
}

// cgroupLimitFiles lists where the memory limit of the cgroup named in
// /proc/self/cgroup can be read: the process's own group (v2 "0::/path", v1
// "N:memory:/path"), then the mount root, which is the group itself inside
// a container's cgroup namespace.
func cgroupLimitFiles(procSelfCgroup string) []string {
	var out []string
	for _, line := range strings.Split(procSelfCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || strings.Contains(parts[2], "..") {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			out = append(out, path.Join("/sys/fs/cgroup", parts[2], "memory.max"))
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			out = append(out, path.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
		}
	}
	return append(out, "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
}

// parseMemoryMax reads a cgroup memory limit file: a byte count, or "max"
// (v2) or a huge number (v1) for no limit.
func parseMemoryMax(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n >= 1<<50 {
		return 0
	}
	return n
}
