// Package examples embeds the seed files so `rollcall serve` in dev mode can
// load the demo programmes without the source tree beside the binary.
package examples

import "embed"

//go:embed *.yaml
var Files embed.FS

// Demo lists the files dev mode loads, in order.
var Demo = []string{"connect-to-learn.yaml", "onclick.yaml"}
