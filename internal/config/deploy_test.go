package config_test

// The container files are checked here with what runs without a Docker
// engine: the compose file is parsed (gopkg.in/yaml.v3) and its service
// environment must start the configuration; the Dockerfile's build command is
// run as written; .dockerignore must keep local state out of the context.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rollcall-dev/rollcall/internal/config"
)

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type composeFile struct {
	Services map[string]struct {
		Build       any               `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		EnvFile     []struct {
			Path     string `yaml:"path"`
			Required *bool  `yaml:"required"`
		} `yaml:"env_file"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
}

// interpolate applies Compose's ${VAR:-default} with an empty shell: what the
// service gets before anyone has set anything.
var interp = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?-([^}]*))?\}`)

func TestCompose_WorksBeforeAnythingIsSetAndPassesTheSettings(t *testing.T) {
	src := readRepoFile(t, "docker-compose.yml")
	// ${VAR:?} makes every compose command (down, logs) fail until VAR is set.
	if m := regexp.MustCompile(`\$\{[A-Za-z0-9_]+:?\?`).FindString(src); m != "" {
		t.Fatalf("docker-compose.yml requires a variable (%s…): compose down/logs would fail without it", m)
	}
	var cf composeFile
	if err := yaml.Unmarshal([]byte(src), &cf); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	built := 0
	for name, s := range cf.Services {
		if s.Build != nil {
			built++
			if s.Image == "" {
				t.Errorf("%s: a built service needs an image name so the image is built once", name)
			}
		}
	}
	if built != 1 {
		t.Errorf("%d services build the image; build it once", built)
	}
	rc, ok := cf.Services["rollcall"]
	if !ok {
		t.Fatal("no rollcall service")
	}
	if !slices.Equal(rc.Healthcheck.Test, []string{"CMD", "/usr/local/bin/rollcall", "ready"}) {
		t.Errorf("healthcheck must run `rollcall ready` (the /readyz check; the image has no shell): %v", rc.Healthcheck.Test)
	}
	if rc.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("rollcall must wait for a healthy PostgreSQL: %+v", rc.DependsOn)
	}
	if len(rc.EnvFile) != 1 || rc.EnvFile[0].Required == nil || *rc.EnvFile[0].Required {
		t.Errorf("the env file for provider secrets must be optional: %+v", rc.EnvFile)
	}
	for _, v := range []string{"ROLLCALL_DATABASE_URL", "ROLLCALL_PUBLIC_URL", "ROLLCALL_SECRET_KEY", "ROLLCALL_BOOTSTRAP_ADMIN",
		"ROLLCALL_BOOTSTRAP_AUDIENCE", "ROLLCALL_METRICS_LISTEN", "ROLLCALL_MIGRATE"} {
		if _, ok := rc.Environment[v]; !ok {
			t.Errorf("compose does not pass %s", v)
		}
	}
	cfgSrc := readRepoFile(t, "internal/config/config.go")
	env := map[string]string{}
	for k, v := range rc.Environment {
		if strings.HasPrefix(k, "ROLLCALL_") && !strings.Contains(cfgSrc, `"`+k+`"`) {
			t.Errorf("compose sets %s, which the service does not read", k)
		}
		env[k] = interp.ReplaceAllString(v, "$3")
	}
	c, err := config.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the compose environment, with nothing set, does not start: %v", err)
	}
	if c.PublicURL != "http://localhost:8080" || c.MetricsListen == "" || !c.Migrate || c.BootstrapIssuer != "" {
		t.Fatalf("compose defaults: %+v", c)
	}
}

func TestDockerfile_OneImageWithBothBinariesAndTheSeedFiles(t *testing.T) {
	src := readRepoFile(t, "Dockerfile")
	var build string
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build") {
			build = strings.TrimPrefix(line, "RUN ")
		}
	}
	for _, want := range []string{"./cmd/rollcall ", "./cmd/rollcall-moodle-sync"} {
		if !strings.Contains(build+" ", want) {
			t.Fatalf("the image's go build does not build %s: %q", want, build)
		}
	}
	for _, want := range []string{
		"COPY --from=build /out/rollcall /out/rollcall-moodle-sync /usr/local/bin/",
		"cp examples/*.yaml /out/home/examples/",
		"COPY --from=build --chown=65532:65532 /out/home /rollcall",
		"WORKDIR /rollcall",
		"ROLLCALL_PUBLIC_URL=",
		`HEALTHCHECK`,
		"USER nonroot",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// Build the binaries exactly as the image does, into a temporary /out.
	out := t.TempDir()
	cmdline := strings.ReplaceAll(build, "-o /out/", "-o "+out+"/")
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}
	for _, bin := range []string{"rollcall", "rollcall-moodle-sync"} {
		if fi, err := os.Stat(filepath.Join(out, bin)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not built: %v", bin, err)
		}
	}
}

// The build context must not carry the local database, the dev signing key,
// secrets or the git history into the image.
func TestDockerignore_KeepsLocalStateOut(t *testing.T) {
	var patterns []string
	for _, l := range strings.Split(readRepoFile(t, ".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.Trim(l, "/"))
		}
	}
	for _, name := range []string{".git", "rollcall.db", "rollcall.db-wal", "rollcall.db.dev-key.pem", "dev-key.pem", ".env", "bin"} {
		matched := false
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, name); ok {
				matched = true
			}
		}
		if !matched {
			t.Errorf(".dockerignore lets %s into the build context", name)
		}
	}
	for _, p := range patterns {
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "internal", "graph", "migrations", "examples"} {
			if ok, _ := filepath.Match(p, needed); ok {
				t.Errorf(".dockerignore pattern %q drops %s, which the build needs", p, needed)
			}
		}
	}
}
