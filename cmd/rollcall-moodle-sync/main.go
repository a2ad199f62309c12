// Command rollcall-moodle-sync keeps a Moodle site's accounts, cohorts and
// course enrolments in step with one Rollcall programme, through Rollcall's
// LMS API and Moodle's REST web services (see package moodlesync and
// docs/moodle.md).
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
//	MOODLE_AUTH            auth plugin of the accounts (default oauth2)
//	MOODLE_STUDENT_ROLE    shortname of the role learners get on courses (default student)
//	MOODLE_STUDENT_ROLE_ID that role's ID in this Moodle (default 5), checked against the shortname
//	MOODLE_COHORT_NAME     cohort names (default "{organisation}: {group}")
//	LOG_LEVEL, LOG_FORMAT  debug|info|warn|error, text|json
//
// With --once it syncs until caught up and exits (for cron); with
// --reconcile it compares every account it manages with the desired state,
// repairs drift and exits (no state file needed); otherwise it runs until
// SIGINT or SIGTERM, long-polling the feed. "rollcall-moodle-sync status"
// prints the state file and exits 3 while learners are parked.
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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	var ex exitError
	if errors.As(err, &ex) {
		os.Exit(int(ex))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rollcall-moodle-sync:", err)
		os.Exit(1)
	}
}

// roleShortname is what Moodle allows in a role's shortname (PARAM_ALPHANUMEXT,
// the type core_user_get_course_user_profiles returns it as).
var roleShortname = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// exitError is an exit status without a message (status: 3 = parked).
type exitError int

func (e exitError) Error() string { return "exit status " + strconv.Itoa(int(e)) }

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
	if len(args) > 0 && args[0] == "status" {
		return status(args[1:], getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("rollcall-moodle-sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "sync until caught up, then exit")
	reconcile := fs.Bool("reconcile", false, "compare every managed Moodle account with the desired state, repair drift, then exit (no state file needed)")
	rollcallURL := fs.String("rollcall-url", getenv("ROLLCALL_URL"), "Rollcall's base URL (env ROLLCALL_URL)")
	programmeID := fs.String("programme-id", getenv("ROLLCALL_PROGRAMME_ID"), "the programme (env ROLLCALL_PROGRAMME_ID)")
	moodleURL := fs.String("moodle-url", getenv("MOODLE_URL"), "the Moodle site's root URL (env MOODLE_URL)")
	stateFile := fs.String("state-file", or(getenv("STATE_FILE"), defaultStateFile), "the state file (env STATE_FILE)")
	auth := fs.String("auth", or(getenv("MOODLE_AUTH"), moodlesync.DefaultAuth), "auth plugin of the accounts the agent creates and manages (env MOODLE_AUTH)")
	roleDefault := int64(moodlesync.DefaultStudentRoleID)
	if v := getenv("MOODLE_STUDENT_ROLE_ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("MOODLE_STUDENT_ROLE_ID %q: a Moodle role ID (a positive number)", v)
		}
		roleDefault = n
	}
	role := fs.Int64("student-role-id", roleDefault, "the ID of that role in this Moodle; the agent checks it has the shortname --student-role (env MOODLE_STUDENT_ROLE_ID)")
	roleName := fs.String("student-role", or(getenv("MOODLE_STUDENT_ROLE"), moodlesync.DefaultStudentRole), "the shortname of the Moodle role learners get on their courses (env MOODLE_STUDENT_ROLE)")
	cohortName := fs.String("cohort-name", or(getenv("MOODLE_COHORT_NAME"), "{organisation}: {group}"), "name of new cohorts: {organisation}, {group}, {groupId} (env MOODLE_COHORT_NAME)")
	batch := fs.Int("batch-size", 100, "learners per Moodle call")
	pollWait := fs.Duration("poll-wait", 30*time.Second, "how long to long-poll the feed when caught up (at most 30s)")
	logLevel := fs.String("log-level", or(getenv("LOG_LEVEL"), "info"), "debug, info, warn or error (env LOG_LEVEL)")
	logFormat := fs.String("log-format", or(getenv("LOG_FORMAT"), "text"), "text or json (env LOG_FORMAT)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: rollcall-moodle-sync [--once | --reconcile] [flags]\n"+
			"       rollcall-moodle-sync status [--state-file FILE]\n\n"+
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
	if *once && *reconcile {
		return errors.New("--once and --reconcile: choose one")
	}
	if *role <= 0 || *batch <= 0 {
		return errors.New("--student-role-id and --batch-size must be positive")
	}
	if !roleShortname.MatchString(*roleName) {
		return fmt.Errorf("--student-role %q: a Moodle role shortname (letters, digits, _ and -), such as student", *roleName)
	}

	cfg := moodlesync.Config{
		RollcallURL: *rollcallURL, APIKey: getenv("ROLLCALL_API_KEY"), ProgrammeID: *programmeID,
		MoodleURL: *moodleURL, MoodleToken: getenv("MOODLE_TOKEN"), StateFile: *stateFile, PollWait: *pollWait,
		Auth: *auth, StudentRole: *roleName, StudentRoleID: *role, CohortName: *cohortName, BatchSize: *batch,
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
	switch {
	case *once:
		return agent.RunOnce(ctx)
	case *reconcile:
		return agent.Reconcile(ctx)
	}
	cfg.Log.Info("rollcall-moodle-sync running", "programme", cfg.ProgrammeID, "state_file", cfg.StateFile)
	if err := agent.Run(ctx); err != nil {
		return err
	}
	cfg.Log.Info("rollcall-moodle-sync stopped")
	return nil
}

// status prints the state file: cursor, learners, parked learners. Exit
// status 3 while any learner is parked, for monitoring.
func status(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rollcall-moodle-sync status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := getenv("STATE_FILE")
	if def == "" {
		def = defaultStateFile
	}
	stateFile := fs.String("state-file", def, "the state file (env STATE_FILE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	st, err := moodlesync.ReadStatus(*stateFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "programme   %s\nmoodle      %s\ncursor      %s\nlearners    %d (%d erased)\nparked      %d\n",
		st.ProgrammeID, st.MoodleURL, or(st.Cursor, "(none: the next run lists the desired state)"), st.Learners, st.Erased, len(st.Parked))
	for _, p := range st.Parked {
		fmt.Fprintf(stdout, "  %s  since %s  attempts %d  next %s  %s\n      %s\n      %s\n", p.LearnerID,
			p.Since.Format(time.RFC3339), p.Attempts, p.Next.Format(time.RFC3339), p.Code, p.Reason, p.Hint)
	}
	if len(st.Parked) > 0 {
		return exitError(3)
	}
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
