// Package config reads Rollcall's settings from the environment. There are no
// globals: FromEnv takes getenv so tests and main pass their own.
package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/internal/auth"
)

// Config is every setting the service reads.
type Config struct {
	DatabaseURL          string        // ROLLCALL_DATABASE_URL
	Listen               string        // ROLLCALL_LISTEN
	PublicURL            string        // ROLLCALL_PUBLIC_URL
	Dev                  bool          // ROLLCALL_DEV
	Migrate              bool          // ROLLCALL_MIGRATE
	BootstrapIssuer      string        // ROLLCALL_BOOTSTRAP_ADMIN (issuer part)
	BootstrapSubject     string        // ROLLCALL_BOOTSTRAP_ADMIN (subject part)
	BootstrapAudience    string        // ROLLCALL_BOOTSTRAP_AUDIENCE
	AllowInsecureIssuers bool          // ROLLCALL_ALLOW_INSECURE_ISSUERS
	LogLevel             string        // ROLLCALL_LOG_LEVEL
	LogFormat            string        // ROLLCALL_LOG_FORMAT
	CORSOrigins          []string      // ROLLCALL_CORS_ORIGINS
	MaxBodyBytes         int64         // ROLLCALL_MAX_BODY_BYTES
	ShutdownTimeout      time.Duration // ROLLCALL_SHUTDOWN_TIMEOUT
	DevKeyFile           string        // ROLLCALL_DEV_KEY_FILE
	SecretKey            []byte        // ROLLCALL_SECRET_KEY (32 bytes, base64)
	SweepInterval        time.Duration // ROLLCALL_SWEEP_INTERVAL (0: no scheduler)
	FeedRetention        time.Duration // ROLLCALL_FEED_RETENTION
	MetricsListen        string        // ROLLCALL_METRICS_LISTEN ("": no /metrics)
}

// DefaultDatabaseURL is the embedded database, used when nothing is set.
const DefaultDatabaseURL = "sqlite:./rollcall.db"

// FromEnv reads and validates the configuration. An error names the variable.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:     or(getenv("ROLLCALL_DATABASE_URL"), DefaultDatabaseURL),
		Listen:          or(getenv("ROLLCALL_LISTEN"), "127.0.0.1:8080"),
		LogLevel:        or(getenv("ROLLCALL_LOG_LEVEL"), "info"),
		LogFormat:       or(getenv("ROLLCALL_LOG_FORMAT"), "text"),
		MaxBodyBytes:    16 << 20, // a 100,000-row importLearners is about 9 MB
		ShutdownTimeout: 20 * time.Second,
		SweepInterval:   time.Hour,
		FeedRetention:   30 * 24 * time.Hour,
	}
	var err error
	embedded := strings.HasPrefix(c.DatabaseURL, "sqlite:")
	if !embedded && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return c, fmt.Errorf("ROLLCALL_DATABASE_URL: want postgres://… or sqlite:PATH")
	}
	if embedded && strings.TrimPrefix(c.DatabaseURL, "sqlite:") == "" {
		return c, fmt.Errorf("ROLLCALL_DATABASE_URL: sqlite: needs a path")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return c, fmt.Errorf("ROLLCALL_LISTEN: want host:port: %v", err)
	}
	if c.Dev, err = boolVar(getenv, "ROLLCALL_DEV", false); err != nil {
		return c, err
	}
	if c.Dev && !embedded {
		return c, fmt.Errorf("ROLLCALL_DEV: dev mode runs only on the embedded database; unset it when ROLLCALL_DATABASE_URL is PostgreSQL")
	}
	if c.Migrate, err = boolVar(getenv, "ROLLCALL_MIGRATE", embedded); err != nil {
		return c, err
	}
	if c.AllowInsecureIssuers, err = boolVar(getenv, "ROLLCALL_ALLOW_INSECURE_ISSUERS", false); err != nil {
		return c, err
	}
	host, port, _ := net.SplitHostPort(c.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c.PublicURL = strings.TrimRight(or(getenv("ROLLCALL_PUBLIC_URL"), "http://"+net.JoinHostPort(host, port)), "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("ROLLCALL_PUBLIC_URL: want an absolute http(s) URL")
	}
	if b := getenv("ROLLCALL_BOOTSTRAP_ADMIN"); b != "" {
		iss, sub, ok := strings.Cut(b, "|")
		if !ok || iss == "" || sub == "" {
			return c, fmt.Errorf("ROLLCALL_BOOTSTRAP_ADMIN: want issuer|subject")
		}
		if u, err := url.Parse(iss); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return c, fmt.Errorf("ROLLCALL_BOOTSTRAP_ADMIN: the issuer must be an http(s) URL")
		}
		// The verifier applies the same check to every token's issuer: a
		// setting it would refuse at every sign-in is refused here, at start.
		if err := auth.CheckIssuerURL(iss, c.AllowInsecureIssuers || c.Dev); err != nil {
			return c, fmt.Errorf("ROLLCALL_BOOTSTRAP_ADMIN: no token from %s could ever be accepted: %v (an identity provider must be https; http is for loopback test issuers with ROLLCALL_ALLOW_INSECURE_ISSUERS=1)", iss, err)
		}
		c.BootstrapIssuer, c.BootstrapSubject = iss, sub
		c.BootstrapAudience = getenv("ROLLCALL_BOOTSTRAP_AUDIENCE")
		if c.BootstrapAudience == "" {
			return c, fmt.Errorf("ROLLCALL_BOOTSTRAP_AUDIENCE: required with ROLLCALL_BOOTSTRAP_ADMIN (the audience accepted from that issuer)")
		}
	} else if getenv("ROLLCALL_BOOTSTRAP_AUDIENCE") != "" {
		return c, fmt.Errorf("ROLLCALL_BOOTSTRAP_AUDIENCE: set without ROLLCALL_BOOTSTRAP_ADMIN, so it would be ignored; set both (issuer|subject and its audience) or neither")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("ROLLCALL_LOG_LEVEL: want debug, info, warn or error")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return c, fmt.Errorf("ROLLCALL_LOG_FORMAT: want text or json")
	}
	if o := getenv("ROLLCALL_CORS_ORIGINS"); o != "" {
		for _, s := range strings.Split(o, ",") {
			s = strings.TrimSpace(s)
			if u, err := url.Parse(s); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
				return c, fmt.Errorf("ROLLCALL_CORS_ORIGINS: %q is not an origin like https://lms.example.org", s)
			}
			c.CORSOrigins = append(c.CORSOrigins, s)
		}
	}
	if v := getenv("ROLLCALL_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 || n > 64<<20 {
			return c, fmt.Errorf("ROLLCALL_MAX_BODY_BYTES: want a number of bytes between 1024 and 67108864")
		}
		c.MaxBodyBytes = n
	}
	if v := getenv("ROLLCALL_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("ROLLCALL_SHUTDOWN_TIMEOUT: want a Go duration like 20s")
		}
		c.ShutdownTimeout = d
	}
	if v := getenv("ROLLCALL_SECRET_KEY"); v != "" {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != 32 {
			return c, fmt.Errorf("ROLLCALL_SECRET_KEY: want 32 random bytes, base64-encoded (openssl rand -base64 32)")
		}
		c.SecretKey = k
	}
	if v := getenv("ROLLCALL_SWEEP_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (d > 0 && d < time.Minute) {
			return c, fmt.Errorf("ROLLCALL_SWEEP_INTERVAL: want a Go duration of at least 1m (e.g. 1h), or 0 to turn the scheduler off")
		}
		c.SweepInterval = d
	}
	if v := getenv("ROLLCALL_FEED_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour {
			return c, fmt.Errorf("ROLLCALL_FEED_RETENTION: want a Go duration of at least 1h (e.g. 720h for 30 days)")
		}
		c.FeedRetention = d
	}
	if v := getenv("ROLLCALL_METRICS_LISTEN"); v != "" {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return c, fmt.Errorf("ROLLCALL_METRICS_LISTEN: want host:port (e.g. 127.0.0.1:9090): %v", err)
		}
		if v == c.Listen {
			return c, fmt.Errorf("ROLLCALL_METRICS_LISTEN: must differ from ROLLCALL_LISTEN: /metrics is never served on the public listener")
		}
		c.MetricsListen = v
	}
	c.DevKeyFile = getenv("ROLLCALL_DEV_KEY_FILE")
	if c.DevKeyFile == "" && embedded {
		c.DevKeyFile = strings.TrimPrefix(c.DatabaseURL, "sqlite:") + ".dev-key.pem"
	}
	return c, nil
}

// DevIssuerURL is where dev mode serves its local OIDC issuer.
func (c Config) DevIssuerURL() string { return c.PublicURL + "/dev/oidc" }

// DevAudience is the audience of dev tokens.
const DevAudience = "rollcall-dev"

// DevBootstrapSubject is the dev issuer's subject that acts as bootstrap admin.
const DevBootstrapSubject = "dev-admin"

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func boolVar(getenv func(string) string, name string, def bool) (bool, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: want true/false or 1/0, got %q", name, v)
	}
	return b, nil
}
