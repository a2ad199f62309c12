package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/examples"
	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/auth"
	"github.com/rollcall-dev/rollcall/internal/config"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/metrics"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/seed"
	"github.com/rollcall-dev/rollcall/internal/server"
	"github.com/rollcall-dev/rollcall/internal/store"
	"github.com/rollcall-dev/rollcall/internal/web"
	"github.com/rollcall-dev/rollcall/migrations"
)

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	lvl := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.LogLevel]
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(server.LogHandler{Handler: h})
}

// openStore opens the configured database and migrates it when configured to.
func openStore(ctx context.Context, cfg config.Config, forceMigrate bool, opts ...store.Options) (*store.Store, error) {
	var o store.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, o)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate || forceMigrate {
		if err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	return st, nil
}

// serviceOptions are the lifecycle options every command builds its service
// with, so that a one-off command (grant, seed, sweep, …) acts as `serve`
// would: the same bootstrap admin, secret key, feed retention and issuer
// rules. serve adds its log, metrics and verifier hooks.
func serviceOptions(cfg config.Config, getenv func(string) string) lifecycle.Options {
	return lifecycle.Options{BootstrapAdmin: bootstrapIdentity(cfg), SecretKey: cfg.SecretKey,
		FeedRetention: cfg.FeedRetention, Getenv: getenv, AllowInsecureIssuers: cfg.AllowInsecureIssuers || cfg.Dev}
}

// openService is the set-up of a one-off command: the configuration from the
// environment, the store (migrated when ROLLCALL_MIGRATE says so) and the
// service on it. closeStore releases the store.
func openService(ctx context.Context, getenv func(string) string) (cfg config.Config, svc *lifecycle.Service, closeStore func(), err error) {
	if cfg, err = config.FromEnv(getenv); err != nil {
		return cfg, nil, nil, err
	}
	st, err := openStore(ctx, cfg, false)
	if err != nil {
		return cfg, nil, nil, err
	}
	return cfg, lifecycle.New(st, serviceOptions(cfg, getenv)), func() { _ = st.Close() }, nil
}

func bootstrapIdentity(cfg config.Config) *domain.Identity {
	switch {
	case cfg.BootstrapIssuer != "":
		return &domain.Identity{Issuer: cfg.BootstrapIssuer, Subject: cfg.BootstrapSubject}
	case cfg.Dev:
		return &domain.Identity{Issuer: cfg.DevIssuerURL(), Subject: config.DevBootstrapSubject}
	}
	return nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("serve takes no arguments; configure it with ROLLCALL_* variables")
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	rt := config.TuneRuntime()
	log.Info("runtime", "gc_percent", rt.GCPercent, "memory_limit_bytes", rt.MemoryLimit, "memory_limit_from", rt.Source)
	// Metrics only when ROLLCALL_METRICS_LISTEN is set, on their own listener.
	var m *metrics.Metrics
	var stOpts store.Options
	if cfg.MetricsListen != "" {
		m = metrics.New()
		stOpts.OnEventsCommitted = m.EventsCommitted
	}
	st, err := openStore(ctx, cfg, false, stOpts)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Ready(ctx); err != nil {
		return fmt.Errorf("database not ready (run `rollcall migrate up` or set ROLLCALL_MIGRATE=1): %w", err)
	}

	var (
		verifier *auth.Verifier
		forget   func(string)
	)
	opts := serviceOptions(cfg, getenv)
	opts.Log, opts.FeedObserver = log, feedObserver(m)
	opts.OnProviderChange = func(iss string) {
		// Dev mode registers its providers before the verifier exists.
		if verifier != nil {
			forget(iss)
			verifier.Forget(iss)
		}
	}
	svc := lifecycle.New(st, opts)
	defer svc.StopReadAhead() // the LMS pages read ahead, before the store closes (deferred above)
	var issuers []auth.Issuer
	if cfg.BootstrapIssuer != "" {
		issuers = append(issuers, auth.Issuer{URL: cfg.BootstrapIssuer, Audiences: []string{cfg.BootstrapAudience}})
	}
	vopts := auth.VerifierOptions{AllowInsecureIssuers: cfg.AllowInsecureIssuers, Log: log}
	var (
		dev       *oidcissuer.Issuer
		devIdP    http.Handler
		devSignIn *web.DevSignIn
	)
	if cfg.Dev {
		key, err := oidcissuer.LoadOrCreateKeyFile(cfg.DevKeyFile)
		if err != nil {
			return fmt.Errorf("dev key: %w", err)
		}
		dev = oidcissuer.New(cfg.DevIssuerURL(), key)
		issuers = append(issuers, auth.Issuer{URL: dev.URL(), Audiences: []string{config.DevAudience}})
		vopts.AllowInsecureIssuers = true
		if err := loadDemo(ctx, svc); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
		if devIdP, devSignIn, err = devIdentityProviders(ctx, svc, cfg, key); err != nil {
			return err
		}
		// The server verifies its own dev issuers' discovery, keys and
		// tokens in-process, whatever address it listens on.
		devMux := http.NewServeMux()
		devMux.Handle("/oidc/", http.StripPrefix("/oidc", dev.Handler()))
		devMux.Handle("/idp/", http.StripPrefix("/idp", devIdP))
		vopts.HTTPClient = server.InProcessClient(cfg.PublicURL+"/dev", devMux)
		log.Warn("DEV MODE: a local OIDC issuer is running and its tokens are accepted. Never run dev mode with real data.",
			"issuer", dev.URL())
	}
	providers, f := auth.CachedSource(server.ProviderSource(svc), 30*time.Second, time.Now)
	forget = f
	verifier = auth.NewVerifier(auth.Chain(auth.StaticIssuers(issuers...), providers), vopts)
	handler := server.New(server.Deps{Config: cfg, Service: svc, Verifier: verifier, Ready: st, Log: log, DevIssuer: dev,
		DevIdP: devIdP, DevSignIn: devSignIn})
	if m != nil {
		m.RegisterDB(st.SQL())
		handler = m.Middleware(handler)
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("ROLLCALL_METRICS_LISTEN: %w", err)
		}
		msrv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = msrv.Serve(mln) }()
		defer msrv.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("ROLLCALL_LISTEN: %w", err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 90 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	log.Info("listening", "addr", ln.Addr().String(), "database", string(st.Dialect()))
	if cfg.Dev {
		fmt.Fprint(stdout, devHint(cfg, getenv))
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.SweepInterval > 0 {
		go runScheduler(ctx, svc, log, cfg.SweepInterval, m)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// loadDemo loads the demo programmes the first time dev mode starts on a
// database. A programme that exists already is left as it is: seeding
// matches organisations and groups by name, so re-applying the demo after an
// admin renamed one would add a second (and an admin's course changes must
// survive a restart anyway).
func loadDemo(ctx context.Context, svc *lifecycle.Service) error {
	ctx = lifecycle.WithSystem(ctx, "demo-seed")
	for _, name := range examples.Demo {
		f, err := examples.Files.Open(name)
		if err != nil {
			return err
		}
		file, err := seed.Parse(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch _, err := svc.ProgrammeByName(ctx, file.Programme.Name); apperr.CodeOf(err) {
		case "":
			continue // loaded on an earlier start
		case apperr.NotFound:
		default:
			return fmt.Errorf("%s: %w", name, err)
		}
		if _, err := seed.Apply(ctx, svc, file); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: rollcall migrate up|down|status")
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "up":
		if err := migrations.Up(ctx, st.SQL(), st.Dialect()); err != nil {
			return err
		}
	case "down":
		if err := migrations.Down(ctx, st.SQL(), st.Dialect()); err != nil {
			return err
		}
	case "status":
	default:
		return fmt.Errorf("usage: rollcall migrate up|down|status")
	}
	states, err := migrations.Status(ctx, st.SQL(), st.Dialect())
	if err != nil {
		return err
	}
	for _, s := range states {
		mark := "pending"
		if s.Applied {
			mark = "applied"
		}
		fmt.Fprintf(stdout, "%05d %-8s %s\n", s.Version, mark, s.Source)
	}
	return nil
}

func seedCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: rollcall seed FILE...")
	}
	_, svc, closeStore, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeStore()
	ctx = lifecycle.WithSystem(ctx, "seed")
	for _, path := range args {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		file, err := seed.Parse(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rep, err := seed.Apply(ctx, svc, file)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(stdout, "%s: programme %s, created %v\n", path, rep.ProgrammeID, rep.Created)
	}
	return nil
}

// devToken prints a token from the dev issuer and records the grant it needs.
// It is refused outside dev mode: these tokens prove nothing about anyone.
func devToken(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "admin@example.org", "email claim of the token")
	subject := fs.String("subject", "", "subject (default: derived from --email; dev-admin for BOOTSTRAP)")
	role := fs.String("role", "BOOTSTRAP", "BOOTSTRAP, PROGRAMME_ADMIN, ORGANISATION_ADMIN, AUDITOR, LMS or NONE")
	programme := fs.String("programme", "", "programme name or ID (for programme-scoped roles)")
	organisation := fs.String("organisation", "", "organisation name or ID (ORGANISATION_ADMIN)")
	body := fs.String("body", "", "governing body name (PROGRAMME_ADMIN approving for it, CTL-1)")
	ttl := fs.Duration("ttl", 8*time.Hour, "token lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	if !cfg.Dev {
		return errors.New("dev-token is refused: dev mode is off (set ROLLCALL_DEV=1, embedded database only)")
	}
	st, err := openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := oidcissuer.LoadOrCreateKeyFile(cfg.DevKeyFile)
	if err != nil {
		return err
	}
	iss := oidcissuer.New(cfg.DevIssuerURL(), key)
	sub := *subject
	r := strings.ToUpper(*role)
	if sub == "" {
		sub = "dev:" + strings.ToLower(*email)
		if r == "BOOTSTRAP" {
			sub = config.DevBootstrapSubject
		}
	}
	if r != "BOOTSTRAP" && r != "NONE" {
		svc := lifecycle.New(st, serviceOptions(cfg, getenv))
		sctx := lifecycle.WithSystem(ctx, "dev-token")
		in, err := grantInput(sctx, svc, iss.URL(), sub, r, *programme, *organisation, *body)
		if err != nil {
			return err
		}
		if _, err := svc.GrantRole(sctx, in); err != nil && apperr.CodeOf(err) != apperr.Conflict {
			return fmt.Errorf("grant: %w", err)
		}
	}
	verified := true
	tok, err := iss.Mint(oidcissuer.Claims{Subject: sub, Audience: []string{config.DevAudience}, Email: *email,
		EmailVerified: &verified, Expiry: time.Now().Add(*ttl)})
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "WARNING: dev-mode token; it is accepted only by a server running with ROLLCALL_DEV=1.")
	fmt.Fprintln(stdout, tok)
	return nil
}

func findProgramme(ctx context.Context, svc *lifecycle.Service, ref string) (domain.Programme, error) {
	ps, err := svc.Programmes(ctx)
	if err != nil {
		return domain.Programme{}, err
	}
	if ref == "" {
		if len(ps) == 1 {
			return ps[0], nil
		}
		return domain.Programme{}, fmt.Errorf("--programme is required (there are %d programmes)", len(ps))
	}
	for _, p := range ps {
		if p.ID == ref || strings.EqualFold(p.Name, ref) {
			return p, nil
		}
	}
	return domain.Programme{}, fmt.Errorf("--programme: no programme %q", ref)
}

// runScheduler sweeps every programme on an interval. On PostgreSQL the sweep
// takes an advisory lock, so with several replicas one sweeps at a time.
func runScheduler(ctx context.Context, svc *lifecycle.Service, log *slog.Logger, every time.Duration, m *metrics.Metrics) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		start := time.Now()
		reps, err := svc.SweepAll(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("retention sweep failed", "err", err.Error())
		}
		m.Sweep(sweepRun(reps, err, time.Since(start)))
		for _, r := range reps {
			if r.Erased+r.ScheduledInactive+r.RequestsOpened > 0 {
				log.Info("retention sweep", "programme", r.ProgrammeID, "erased", r.Erased,
					"scheduled_inactive", r.ScheduledInactive, "requests_opened", r.RequestsOpened)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepRun summarises one SweepAll for the metrics: no reports and no error
// means another replica held the lock.
func sweepRun(reps []lifecycle.SweepReport, err error, took time.Duration) metrics.SweepRun {
	r := metrics.SweepRun{Failed: err != nil, Skipped: err == nil && reps == nil, Took: took}
	for _, rep := range reps {
		r.Erased += rep.Erased
		r.ScheduledInactive += rep.ScheduledInactive
		r.RequestsOpened += rep.RequestsOpened
		r.Warn += rep.ContractWarned
	}
	return r
}

// feedObserver is m as the lifecycle's feed observer, or none (a nil
// *Metrics must not become a non-nil interface).
func feedObserver(m *metrics.Metrics) lifecycle.FeedObserver {
	if m == nil {
		return nil
	}
	return m
}

func sweepCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("usage: rollcall sweep")
	}
	_, svc, closeStore, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeStore()
	reps, err := svc.SweepAll(ctx)
	if err != nil {
		return err
	}
	if reps == nil {
		fmt.Fprintln(stdout, "another process is sweeping; nothing done")
	}
	for _, r := range reps {
		fmt.Fprintf(stdout, "programme %s: erased %d, scheduled for inactivity %d, requests opened %d, contract ended %v\n",
			r.ProgrammeID, r.Erased, r.ScheduledInactive, r.RequestsOpened, r.ContractEnded)
	}
	return nil
}
