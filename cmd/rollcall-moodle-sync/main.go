// Command rollcall-moodle-sync keeps a Moodle site's accounts, cohorts and
// course enrolments in step with one Rollcall programme, through Rollcall's
// LMS API and Moodle's REST web services (see package moodlesync).
//
// Configuration comes from the environment; the non-secret settings can also
// be given as flags, which win. The API key and the Moodle token are read
// from the environment only, so they never show in a process list.
//
//	ROLLCALL_URL           Rollcall's base URL (or its /graphql endpoint)
//	ROLLCALL_API_KEY       the programme's LMS API key
//	ROLLCALL_PROGRAMME_ID  the programme
//	MOODLE_URL             the Moodle site's root URL
//	MOODLE_TOKEN           a Moodle web-service token
//	STATE_FILE             cursor and versions (default ./moodle-sync.state.json)
//	LOG_LEVEL, LOG_FORMAT  debug|info|warn|error, text|json
//
// With --once it syncs until caught up and exits (for cron); otherwise it
// runs until SIGINT or SIGTERM, long-polling the feed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rollcall-moodle-sync:", err)
		os.Exit(1)
	}
}

const defaultStateFile = "./moodle-sync.state.json"

// run is main without the process: tests call it with their own arguments,
// environment and output.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	fs := flag.NewFlagSet("rollcall-moodle-sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "sync until caught up, then exit")
	rollcallURL := fs.String("rollcall-url", getenv("ROLLCALL_URL"), "Rollcall's base URL (env ROLLCALL_URL)")
	programmeID := fs.String("programme-id", getenv("ROLLCALL_PROGRAMME_ID"), "the programme (env ROLLCALL_PROGRAMME_ID)")
	moodleURL := fs.String("moodle-url", getenv("MOODLE_URL"), "the Moodle site's root URL (env MOODLE_URL)")
	stateFile := fs.String("state-file", or(getenv("STATE_FILE"), defaultStateFile), "the state file (env STATE_FILE)")
	pollWait := fs.Duration("poll-wait", 30*time.Second, "how long to long-poll the feed when caught up (at most 30s)")
	logLevel := fs.String("log-level", or(getenv("LOG_LEVEL"), "info"), "debug, info, warn or error (env LOG_LEVEL)")
	logFormat := fs.String("log-format", or(getenv("LOG_FORMAT"), "text"), "text or json (env LOG_FORMAT)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: rollcall-moodle-sync [--once] [flags]\n\n"+
			"The API key and the Moodle token come from ROLLCALL_API_KEY and MOODLE_TOKEN.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}

	cfg := moodlesync.Config{
		RollcallURL: *rollcallURL, APIKey: getenv("ROLLCALL_API_KEY"), ProgrammeID: *programmeID,
		MoodleURL: *moodleURL, MoodleToken: getenv("MOODLE_TOKEN"), StateFile: *stateFile, PollWait: *pollWait,
	}
	var missing []string
	for _, m := range []struct{ name, v string }{
		{"ROLLCALL_URL", cfg.RollcallURL}, {"ROLLCALL_API_KEY", cfg.APIKey}, {"ROLLCALL_PROGRAMME_ID", cfg.ProgrammeID},
		{"MOODLE_URL", cfg.MoodleURL}, {"MOODLE_TOKEN", cfg.MoodleToken},
	} {
		if strings.TrimSpace(m.v) == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("set %s", strings.Join(missing, ", "))
	}
	level, ok := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[*logLevel]
	if !ok {
		return fmt.Errorf("log level %q: use debug, info, warn or error", *logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		return fmt.Errorf("log format %q: use text or json", *logFormat)
	}
	cfg.Log = slog.New(h)

	agent, err := moodlesync.New(cfg)
	if err != nil {
		return err
	}
	if *once {
		return agent.RunOnce(ctx)
	}
	cfg.Log.Info("rollcall-moodle-sync running", "programme", cfg.ProgrammeID, "state_file", cfg.StateFile)
	if err := agent.Run(ctx); err != nil {
		return err
	}
	cfg.Log.Info("rollcall-moodle-sync stopped")
	return nil
}
