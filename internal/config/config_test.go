package config_test

import (
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv_Defaults(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "sqlite:./rollcall.db" || c.Listen != "127.0.0.1:8080" || !c.Migrate || c.Dev ||
		c.PublicURL != "http://127.0.0.1:8080" || c.AllowInsecureIssuers {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = config.FromEnv(env(map[string]string{"ROLLCALL_DATABASE_URL": "postgres://u@db/rollcall"}))
	if err != nil || c.Migrate {
		t.Fatalf("PostgreSQL does not migrate on start by default: %+v %v", c, err)
	}
}

// A bad value stops start-up with a message naming the variable.
func TestFromEnv_BadValuesNameTheVariable(t *testing.T) {
	cases := map[string]map[string]string{
		"ROLLCALL_DATABASE_URL":           {"ROLLCALL_DATABASE_URL": "mysql://x"},
		"ROLLCALL_LISTEN":                 {"ROLLCALL_LISTEN": "8080"},
		"ROLLCALL_DEV":                    {"ROLLCALL_DEV": "yes please"},
		"ROLLCALL_DEV ":                   {"ROLLCALL_DEV": "1", "ROLLCALL_DATABASE_URL": "postgres://u@db/x"},
		"ROLLCALL_MIGRATE":                {"ROLLCALL_MIGRATE": "maybe"},
		"ROLLCALL_PUBLIC_URL":             {"ROLLCALL_PUBLIC_URL": "ftp://x"},
		"ROLLCALL_BOOTSTRAP_ADMIN":        {"ROLLCALL_BOOTSTRAP_ADMIN": "no-bar"},
		"ROLLCALL_BOOTSTRAP_AUDIENCE":     {"ROLLCALL_BOOTSTRAP_ADMIN": "https://login.example/|sub"},
		"ROLLCALL_ALLOW_INSECURE_ISSUERS": {"ROLLCALL_ALLOW_INSECURE_ISSUERS": "2"},
		"ROLLCALL_LOG_LEVEL":              {"ROLLCALL_LOG_LEVEL": "loud"},
		"ROLLCALL_CORS_ORIGINS":           {"ROLLCALL_CORS_ORIGINS": "not an origin"},
		"ROLLCALL_MAX_BODY_BYTES":         {"ROLLCALL_MAX_BODY_BYTES": "10"},
		"ROLLCALL_METRICS_LISTEN":         {"ROLLCALL_METRICS_LISTEN": "9090"},
		"ROLLCALL_METRICS_LISTEN ":        {"ROLLCALL_METRICS_LISTEN": "127.0.0.1:8080"},
	}
	for name, vars := range cases {
		_, err := config.FromEnv(env(vars))
		if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%s: want an error naming the variable, got %v", name, err)
		}
	}
}

func TestFromEnv_BootstrapAdmin(t *testing.T) {
	c, err := config.FromEnv(env(map[string]string{
		"ROLLCALL_BOOTSTRAP_ADMIN":    "https://login.microsoftonline.com/tenant/v2.0|abc|def",
		"ROLLCALL_BOOTSTRAP_AUDIENCE": "api://rollcall",
	}))
	if err != nil {
		t.Fatal(err)
	}
	// The subject may itself contain '|': only the first one separates.
	if c.BootstrapIssuer != "https://login.microsoftonline.com/tenant/v2.0" || c.BootstrapSubject != "abc|def" || c.BootstrapAudience != "api://rollcall" {
		t.Fatalf("%+v", c)
	}
}

// Settings that can never work are refused at start, naming the variable: an
// http:// bootstrap issuer off loopback (the verifier refuses every token from
// it, so the first admin could never sign in), and an audience set without
// the admin it belongs to (it would be silently ignored).
func TestFromEnv_BootstrapSettingsThatCanNeverWorkAreRefused(t *testing.T) {
	cases := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"http issuer in a container", map[string]string{
			"ROLLCALL_BOOTSTRAP_ADMIN": "http://keycloak:8080/realms/council|abc", "ROLLCALL_BOOTSTRAP_AUDIENCE": "rollcall",
			"ROLLCALL_ALLOW_INSECURE_ISSUERS": "1"}, "ROLLCALL_BOOTSTRAP_ADMIN"},
		{"http issuer without the insecure switch", map[string]string{
			"ROLLCALL_BOOTSTRAP_ADMIN": "http://127.0.0.1:9000|abc", "ROLLCALL_BOOTSTRAP_AUDIENCE": "rollcall"}, "ROLLCALL_BOOTSTRAP_ADMIN"},
		{"audience alone", map[string]string{"ROLLCALL_BOOTSTRAP_AUDIENCE": "api://rollcall"}, "ROLLCALL_BOOTSTRAP_AUDIENCE"},
	}
	for _, tc := range cases {
		_, err := config.FromEnv(env(tc.vars))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("%s: want an error starting %q, got %v", tc.name, tc.want, err)
		}
	}
	// What can work still starts: https anywhere, http on loopback with the switch.
	for _, ok := range []map[string]string{
		{"ROLLCALL_BOOTSTRAP_ADMIN": "https://login.microsoftonline.com/t/v2.0|abc", "ROLLCALL_BOOTSTRAP_AUDIENCE": "api://rollcall"},
		{"ROLLCALL_BOOTSTRAP_ADMIN": "http://127.0.0.1:9000|abc", "ROLLCALL_BOOTSTRAP_AUDIENCE": "rollcall", "ROLLCALL_ALLOW_INSECURE_ISSUERS": "1"},
	} {
		if _, err := config.FromEnv(env(ok)); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}

func TestFromEnv_MetricsListenIsOffByDefault(t *testing.T) {
	c, err := config.FromEnv(env(nil))
	if err != nil || c.MetricsListen != "" {
		t.Fatalf("metrics must be off unless ROLLCALL_METRICS_LISTEN is set: %+v %v", c.MetricsListen, err)
	}
	c, err = config.FromEnv(env(map[string]string{"ROLLCALL_METRICS_LISTEN": "127.0.0.1:9090"}))
	if err != nil || c.MetricsListen != "127.0.0.1:9090" {
		t.Fatalf("%+v %v", c.MetricsListen, err)
	}
}
