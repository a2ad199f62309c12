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
