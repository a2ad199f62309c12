package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func envFor(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// dev-token mints tokens anyone could forge: it must refuse outside dev mode.
func TestDevToken_RefusedOutsideDevMode(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "r.db")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"dev-token"}, envFor(map[string]string{"ROLLCALL_DATABASE_URL": db}), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "dev mode is off") || out.Len() != 0 {
		t.Fatalf("want a refusal and no token, got err=%v out=%q", err, out.String())
	}
}

func TestMigrateAndSeedCommands(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "r.db")
	e := envFor(map[string]string{"ROLLCALL_DATABASE_URL": db})
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "up"}, e, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied") || strings.Contains(out.String(), "pending") {
		t.Fatalf("migrate up status: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"seed", "../../examples/onclick.yaml"}, e, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "organisations:1") {
		t.Fatalf("seed report: %s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"seed", "../../examples/onclick.yaml"}, e, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "created map[]") {
		t.Fatalf("second seed created something: %s", out.String())
	}
	if err := run(context.Background(), []string{"migrate", "sideways"}, e, &out, &errb); err == nil {
		t.Fatal("unknown migrate direction accepted")
	}
	if err := run(context.Background(), []string{"frobnicate"}, e, &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
}

// In dev mode, dev-token records the grant and prints a token; the running
// server accepts it (checked end to end in the graph tests via the issuer).
func TestDevToken_DevModeGrantsAndPrints(t *testing.T) {
	dir := t.TempDir()
	e := envFor(map[string]string{"ROLLCALL_DATABASE_URL": "sqlite:" + filepath.Join(dir, "r.db"), "ROLLCALL_DEV": "1"})
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"seed", "../../examples/onclick.yaml"}, e, &out, &errb); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := run(context.Background(), []string{"dev-token", "--role", "ORGANISATION_ADMIN", "--email", "a@westsussex.gov.uk",
		"--organisation", "West Sussex County Council"}, e, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if tok := strings.TrimSpace(out.String()); strings.Count(tok, ".") != 2 {
		t.Fatalf("not a JWT: %q", tok)
	}
	if !strings.Contains(errb.String(), "WARNING") {
		t.Fatalf("dev-token must warn loudly: %q", errb.String())
	}
}

// The quick start: serve in dev mode on the embedded database loads the demo
// programmes, accepts a dev-token, and shuts down cleanly when cancelled.
func TestServe_DevModeQuickStartAndGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	e := envFor(map[string]string{"ROLLCALL_DATABASE_URL": "sqlite:" + filepath.Join(dir, "r.db"), "ROLLCALL_DEV": "1",
		"ROLLCALL_LISTEN": addr})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out, errb syncBuffer
	go func() { done <- run(ctx, []string{"serve"}, e, &out, &errb) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v\n%s", err, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "dev-token") {
		t.Fatalf("dev mode must print how to get a token: %q", out.String())
	}
	var tokOut, tokErr bytes.Buffer
	if err := run(context.Background(), []string{"dev-token"}, e, &tokOut, &tokErr); err != nil {
		t.Fatal(err)
	}
	body := `{"query":"{ viewer { bootstrapAdmin } programmes { name organisations { name } } }"}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tokOut.String()))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Data struct {
			Viewer     struct{ BootstrapAdmin bool }
			Programmes []struct {
				Name          string
				Organisations []struct{ Name string }
			}
		}
		Errors []any
	}
	_ = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if !got.Data.Viewer.BootstrapAdmin || len(got.Data.Programmes) != 2 || len(got.Errors) != 0 {
		t.Fatalf("demo data or dev token not working: %+v", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v on shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if strings.Contains(errb.String(), "@") {
		t.Fatalf("logs contain something that looks like an email address:\n%s", errb.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
