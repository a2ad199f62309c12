package docs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// rulesDoc returns docs/rules.md, the project's copy of the rulebook.
func rulesDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "rules.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every rule the service lists (rules(programmeId)) has its anchor in
// docs/rules.md, its Reference points there, and its source notice is in
// docs/notices/.
func TestDocs_EveryRuleOfTheRulebookIsInDocsRules(t *testing.T) {
	doc := rulesDoc(t)
	rules := domain.AllRules()
	if len(rules) < 27 {
		t.Fatalf("the rulebook lists %d rules; want the 27 of docs/rules.md", len(rules))
	}
	for _, r := range rules {
		anchor := strings.TrimPrefix(r.Reference(), "docs/rules.md#")
		if !strings.Contains(doc, `<a id="`+anchor+`"></a>`+r.ID+" |") {
			t.Errorf("%s: no row with anchor %q in docs/rules.md", r.ID, anchor)
		}
		if _, err := os.Stat(filepath.Join(repoRoot(t), "docs", "notices", r.Source)); err != nil {
			t.Errorf("%s: source notice %s is not in docs/notices: %v", r.ID, r.Source, err)
		}
	}
}

// Test names carry rule IDs (TestSCIM_CTL9_DisableEndsAccess): each must be a
// rule of docs/rules.md, so a name never points at a rule the repo lacks.
func TestDocs_RuleIDsInTestNamesAreInDocsRules(t *testing.T) {
	doc := rulesDoc(t)
	name := regexp.MustCompile(`func (Test\w+)\(`)
	id := regexp.MustCompile(`(?:^|_)(CTL|ONC|GEN)-?(\d+)(?:_|$)`)
	seen := 0
	err := filepath.WalkDir(repoRoot(t), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			for _, part := range strings.Split(m[1], "_") {
				if r := id.FindStringSubmatch("_" + part + "_"); r != nil {
					seen++
					want := `<a id="` + strings.ToLower(r[1]) + "-" + r[2] + `"></a>`
					if !strings.Contains(doc, want) {
						t.Errorf("%s: %s names %s-%s, which docs/rules.md does not have", p, m[1], r[1], r[2])
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen == 0 {
		t.Fatal("no test name carries a rule ID: the scan is broken")
	}
	t.Logf("%d rule IDs in test names checked", seen)
}
