// Package docs_test runs the commands the documentation gives: every ```sh
// block marked <!-- doctest: run --> in README.md and docs/*.md runs, in order
// and in one shell per file, against a service this test starts as `make run`
// does (dev mode, embedded SQLite), and any error fails the test. Blocks that
// cannot run here carry <!-- doctest: skip (why) -->; in the documents this
// package owns, a block with neither marker fails the test.
package docs_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// owned are the documents whose every sh block must be marked.
var owned = []string{"README.md", "docs/README.md", "docs/admins.md", "docs/operators.md", "docs/lms.md", "docs/design-notes.md"}

type block struct {
	file, marker, body string
	line               int
}

var fence = regexp.MustCompile("(?m)^```sh\\s*$")

// blocks returns the sh blocks of a markdown file with the marker on the line
// before each ("" when there is none).
func blocks(t *testing.T, path string) []block {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	var out []block
	for _, loc := range fence.FindAllStringIndex(src, -1) {
		start := loc[1] + 1
		end := strings.Index(src[start:], "\n```")
		if end < 0 {
			t.Fatalf("%s: unterminated sh block", path)
		}
		before := strings.TrimRight(src[:loc[0]], "\n")
		prev := before[strings.LastIndex(before, "\n")+1:]
		marker := ""
		if m := regexp.MustCompile(`^<!-- doctest: (run|skip) ?(.*?)-->$`).FindStringSubmatch(prev); m != nil {
			marker = m[1]
			if m[1] == "skip" && strings.TrimSpace(m[2]) == "" {
				t.Errorf("%s:%d: a skipped block must say why", path, strings.Count(src[:loc[0]], "\n")+1)
			}
		}
		out = append(out, block{file: path, marker: marker, body: src[start : start+end], line: strings.Count(src[:loc[0]], "\n") + 1})
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Every sh block in the documents this package owns says whether it runs.
func TestDocs_EveryShellBlockIsMarked(t *testing.T) {
	root := repoRoot(t)
	n := 0
	for _, f := range owned {
		for _, b := range blocks(t, filepath.Join(root, f)) {
			n++
			if b.marker == "" {
				t.Errorf("%s:%d: sh block without <!-- doctest: run --> or <!-- doctest: skip (why) -->", f, b.line)
			}
		}
	}
	if n == 0 {
		t.Fatal("found no sh blocks at all: the extractor is broken")
	}
}

// TestDocs_CommandsRun starts the service as `make run` does and runs every
// runnable block of every document, failing on a non-zero exit or a GraphQL
// error in the output.
func TestDocs_CommandsRun(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	scripts := map[string]string{}
	var order []string
	for _, f := range files {
		var sb strings.Builder
		for _, b := range blocks(t, f) {
			if b.marker == "run" {
				fmt.Fprintf(&sb, "# %s:%d\n%s\n", filepath.Base(f), b.line, b.body)
			}
		}
		if sb.Len() > 0 {
			rel, _ := filepath.Rel(root, f)
			scripts[rel] = sb.String()
			order = append(order, rel)
		}
	}
	for _, want := range []string{"README.md", "docs/admins.md"} {
		if scripts[want] == "" {
			t.Fatalf("%s has no runnable block", want)
		}
	}

	tmp := t.TempDir()
	addr := freeAddr(t)
	bin := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/rollcall", "./cmd/rollcall-moodle-sync")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ROLLCALL_DATABASE_URL=sqlite:"+filepath.Join(tmp, "rollcall.db"),
		"ROLLCALL_SWEEP_INTERVAL=0",
		// The docs' commands run with make run's defaults; only the port
		// differs here, and dev-token derives the dev issuer's URL from it.
		"ROLLCALL_LISTEN="+addr,
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, filepath.Join(bin, "rollcall"), "serve")
	srv.Dir = tmp
	srv.Env = append(env, "ROLLCALL_DEV=1")
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("service output:\n%s", srvOut.String())
		}
	}()
	waitReady(t, "http://"+addr)

	for _, f := range order {
		script := strings.NewReplacer("localhost:8080", addr, "127.0.0.1:8080", addr).Replace(scripts[f])
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = root
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\nscript:\n%s\noutput:\n%s", f, err, script, out)
			continue
		}
		if bytes.Contains(out, []byte(`"errors"`)) {
			t.Errorf("%s: a command answered with GraphQL errors\nscript:\n%s\noutput:\n%s", f, script, out)
		}
		t.Logf("%s ran:\n%s", f, out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the service did not become ready")
}
