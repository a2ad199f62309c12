package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/config"
)

// TestMain applies the GC policy `rollcall serve` applies, so the figures are
// those of the service as deployed. `make bench` sets GOMEMLIMIT=305MiB (320 MB): 80%
// of the 400 MB the import benchmark allows, as in a 400 MB container.
func TestMain(m *testing.M) {
	rt := config.TuneRuntime()
	fmt.Printf("runtime: GOGC %d (-1: GOGC or Go's default), memory limit %d bytes from %s\n", rt.GCPercent, rt.MemoryLimit, rt.Source)
	os.Exit(m.Run())
}
