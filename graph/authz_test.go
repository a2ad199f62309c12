package graph_test

// The authorisation matrix (CTL-10, CTL-12): every query and mutation of the
// schema, called over HTTP by every kind of caller, against what API.md and
// the lifecycle package promise:
//
//   - no token                              → UNAUTHENTICATED
//   - an object the caller may not see      → NOT_FOUND, exactly as for a missing
//     object (same message, same extensions)
//   - an object the caller sees but may not
//     change (or a programme-level operation
//     the caller's role does not allow)      → FORBIDDEN
//   - allowed                               → the data, the change visible on a
//     follow-up read, and an audit entry naming the caller (CTL-12)
//
// A refused call must leave nothing written: no audit entry in any programme,
// and the object it would have created or changed is as it was.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/testkit"
	"github.com/rollcall-dev/rollcall/migrations"
)

// The callers. Columns of authzMatrix, in this order.
const (
	azAnonymous      = "anonymous"      // no token
	azBootstrap      = "bootstrap"      // the installation's bootstrap admin
	azCTLAdmin       = "ctlAdmin"       // PROGRAMME_ADMIN of Connect to Learn, acting for Kent Connects
	azOnclickAdmin   = "onclickAdmin"   // PROGRAMME_ADMIN of the other programme (Onclick / West Sussex)
	azAuditor        = "auditor"        // AUDITOR of Connect to Learn
	azLMS            = "lms"            // LMS of Connect to Learn
	azOrgAdminMedway = "orgAdminMedway" // ORGANISATION_ADMIN of Medway Council (Connect to Learn)
	azNoGrants       = "noGrants"       // a valid token of an identity holding no grant (its issuer is no learner provider)
	azLearnerMedway  = "learnerMedway"  // a learner of Medway Council, signed in through Medway's own identity provider
)

var authzActors = []string{azAnonymous, azBootstrap, azCTLAdmin, azOnclickAdmin, azAuditor, azLMS, azOrgAdminMedway, azNoGrants, azLearnerMedway}

const azOK = "OK"

// authzMatrix is the expectation: operation × caller → OK or the error code.
//
// Operations target Connect to Learn (CTL) unless named otherwise:
//   - @ownOrg targets Medway Council (the organisation admin's own organisation),
//     @otherOrg targets Kent County Council; for every other caller both are just
//     a CTL partner. For learner operations, @ownOrg is a learner of Medway other
//     than the signed-in learner, @otherOrg a learner of Kent County Council (both
//     created with createLearner), and @self the learnerMedway caller's own record
//     (also a Medway learner).
//   - @otherProgramme targets the Onclick programme.
//   - grantRole@auditorRole / @programmeAdminRole grant a programme-level role;
//     grantRole@ownOrgAdmin / @otherOrgAdmin grant ORGANISATION_ADMIN of Medway / KCC.
//   - revokeRole@auditorGrant / @ownOrgAdminGrant / @otherOrgAdminGrant revoke a
//     fresh CTL grant of that kind; revokeRole@otherProgrammeGrant a fresh
//     AUDITOR grant of the Onclick programme.
//
// Why some cells are what they are:
//   - An organisation admin and the LMS see the programme (programme, rules,
//     courses, policies), so programme-level operations they may not perform are
//     FORBIDDEN; the Onclick admin and the identities without grants (noGrants,
//     learnerMedway) do not see it at all: NOT_FOUND.
//   - Organisations are visible to programme staff (admins, auditors) and to the
//     organisation's own admins, not to the LMS (CTL-10): NOT_FOUND for the LMS,
//     FORBIDDEN for the auditor when changing one.
//   - Membership proposals are visible to programme admins and auditors only:
//     deciding one is FORBIDDEN for an auditor, NOT_FOUND for LMS / org admin.
//   - Role grants are listed to programme admins only (roleGrants), but every
//     grant of a programme is visible to its auditor through the audit log
//     (role.grant entries name the grant, its role and grantee). So revoking a
//     grant is FORBIDDEN for the programme's auditor (visible, read-only role)
//     and NOT_FOUND for callers who cannot see it (LMS, organisation admin,
//     other programme), except an organisation admin revoking an admin grant of
//     their own organisation, which they may do. lifecycle.RevokeRole has a
//     FORBIDDEN branch for this that can never be reached (see the report).
//   - CTL-1: approvals count per governing body. The bootstrap admin administers
//     every programme but acts for no governing body, so it may reject a
//     proposal but not approve one (FORBIDDEN).
//   - CTL-10: a learner is visible to the learner themself, admins of their
//     organisation, programme admins and the programme's LMS; to everyone else
//     (the auditor included: no personal data) it is NOT_FOUND, exactly as a
//     missing learner. The LMS sees learners but may not change them:
//     FORBIDDEN; so may the learner their own record through the admin
//     mutations (updateLearner, acceptPoliciesOnBehalf).
//   - learners lists a programme's learners: programme admins and the LMS see
//     all, an organisation admin their own organisation's (another organisation:
//     NOT_FOUND); the auditor sees the programme but may not list its learners
//     (FORBIDDEN), and asking for one organisation's learners is NOT_FOUND for it,
//     as for an organisation admin asking for another organisation's.
//   - The self-service mutations (acceptPolicies, declinePolicies,
//     updateMyProfile) are a signed-in learner's only: FORBIDDEN for every
//     other identity (for noGrants, with the reason its sign-in as a learner
//     failed).
//   - identityProviders is filtered, not refused, for callers who see the
//     programme: programme admins see every provider, an organisation admin
//     their own organisation's, the auditor and the LMS none (provider
//     configuration is not personal data).
//   - registerIdentityProvider follows the organisation's visibility (admins of
//     that organisation and programme admins may); the programme's own provider
//     is a programme admin's only.
const authzMatrix = `
operation                          anonymous        bootstrap  ctlAdmin   onclickAdmin  auditor    lms        orgAdminMedway  noGrants   learnerMedway
viewer                             UNAUTHENTICATED  OK         OK         OK            OK         OK         OK              OK         OK
programmes                         UNAUTHENTICATED  OK         OK         OK            OK         OK         OK              OK         OK
programme                          UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         OK         OK              NOT_FOUND  NOT_FOUND
programme@otherProgramme           UNAUTHENTICATED  OK         NOT_FOUND  OK            NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
rules                              UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         OK         OK              NOT_FOUND  NOT_FOUND
roleGrants                         UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
organisation@ownOrg                UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
organisation@otherOrg              UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
membershipProposals                UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
auditLog                           UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
createProgramme                    UNAUTHENTICATED  OK         FORBIDDEN  FORBIDDEN     FORBIDDEN  FORBIDDEN  FORBIDDEN       FORBIDDEN  FORBIDDEN
updateProgrammeRules               UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
proposeMembership                  UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
approveMembership                  UNAUTHENTICATED  FORBIDDEN  OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
rejectMembership                   UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
addEmailDomain@ownOrg              UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  FORBIDDEN       NOT_FOUND  NOT_FOUND
addEmailDomain@otherOrg            UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
removeEmailDomain@ownOrg           UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  FORBIDDEN       NOT_FOUND  NOT_FOUND
removeEmailDomain@otherOrg         UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
createCourse                       UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
createAccessGroup@ownOrg           UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
createAccessGroup@otherOrg         UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
setAccessGroupCourses@ownOrg       UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
setAccessGroupCourses@otherOrg     UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
createPolicy                       UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
publishPolicyVersion               UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
grantRole@auditorRole              UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
grantRole@programmeAdminRole       UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
grantRole@ownOrgAdmin              UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
grantRole@otherOrgAdmin            UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
revokeRole@auditorGrant            UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
revokeRole@ownOrgAdminGrant        UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
revokeRole@otherOrgAdminGrant      UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
revokeRole@otherProgrammeGrant     UNAUTHENTICATED  OK         NOT_FOUND  OK            NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
learner@self                       UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  OK         OK              NOT_FOUND  OK
learner@ownOrg                     UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  OK         OK              NOT_FOUND  NOT_FOUND
learner@otherOrg                   UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  OK         NOT_FOUND       NOT_FOUND  NOT_FOUND
learners                           UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  OK         OK              NOT_FOUND  NOT_FOUND
learners@ownOrg                    UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  OK         OK              NOT_FOUND  NOT_FOUND
learners@otherOrg                  UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  OK         NOT_FOUND       NOT_FOUND  NOT_FOUND
retention@self                     UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  OK         OK              NOT_FOUND  OK
retention@ownOrg                   UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  OK         OK              NOT_FOUND  NOT_FOUND
retention@otherOrg                 UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  OK         NOT_FOUND       NOT_FOUND  NOT_FOUND
identityProviders                  UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         OK         OK              NOT_FOUND  NOT_FOUND
registerIdentityProvider@ownOrg    UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
registerIdentityProvider@otherOrg  UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
registerProgrammeIdentityProvider  UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
createLearner@ownOrg               UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
createLearner@otherOrg             UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
importLearners@ownOrg              UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
importLearners@otherOrg            UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
updateLearner@self                 UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  FORBIDDEN
updateLearner@ownOrg               UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  NOT_FOUND
updateLearner@otherOrg             UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  NOT_FOUND       NOT_FOUND  NOT_FOUND
acceptPoliciesOnBehalf@self        UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  FORBIDDEN
acceptPoliciesOnBehalf@ownOrg      UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  NOT_FOUND
acceptPoliciesOnBehalf@otherOrg    UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  NOT_FOUND       NOT_FOUND  NOT_FOUND
acceptPolicies                     UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  FORBIDDEN     FORBIDDEN  FORBIDDEN  FORBIDDEN       FORBIDDEN  OK
declinePolicies                    UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  FORBIDDEN     FORBIDDEN  FORBIDDEN  FORBIDDEN       FORBIDDEN  OK
updateMyProfile                    UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  FORBIDDEN     FORBIDDEN  FORBIDDEN  FORBIDDEN       FORBIDDEN  OK
`

type authzRow struct {
	op   string // e.g. "addEmailDomain@ownOrg"
	want map[string]string
}

func parseAuthzMatrix(t *testing.T) []authzRow {
	t.Helper()
	codes := map[string]bool{azOK: true, "UNAUTHENTICATED": true, "NOT_FOUND": true, "FORBIDDEN": true}
	var rows []authzRow
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSpace(authzMatrix), "\n") {
		f := strings.Fields(line)
		if i == 0 {
			if !slices.Equal(f[1:], authzActors) {
				t.Fatalf("matrix header %v does not list the actors %v", f[1:], authzActors)
			}
			continue
		}
		if len(f) != len(authzActors)+1 {
			t.Fatalf("matrix row %q: want %d cells", line, len(authzActors)+1)
		}
		if seen[f[0]] {
			t.Fatalf("matrix row %q repeated", f[0])
		}
		seen[f[0]] = true
		r := authzRow{op: f[0], want: map[string]string{}}
		for j, who := range authzActors {
			if !codes[f[j+1]] {
				t.Fatalf("matrix row %q: unknown expectation %q", f[0], f[j+1])
			}
			r.want[who] = f[j+1]
		}
		rows = append(rows, r)
	}
	return rows
}

func TestAuthorisationMatrix_CTL10_CTL12(t *testing.T) {
	rows := parseAuthzMatrix(t)
	ops := authzOperations()

	t.Run("everyOperationOfTheSchemaIsInTheMatrix", func(t *testing.T) {
		inMatrix := map[string]bool{}
		for _, r := range rows {
			if ops[r.op] == nil {
				t.Errorf("matrix row %q has no implementation in authzOperations", r.op)
			}
			name, _, _ := strings.Cut(r.op, "@")
			inMatrix[name] = true
		}
		for op := range ops {
			if !slices.ContainsFunc(rows, func(r authzRow) bool { return r.op == op }) {
				t.Errorf("operation %q is implemented but has no matrix row", op)
			}
		}
		for _, name := range authzSchemaOperations(t) {
			if !inMatrix[name] {
				t.Errorf("the schema has operation %q but the authorisation matrix has no row for it: add one (CTL-12)", name)
			}
		}
	})

	for _, d := range testkit.Dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			e := newAuthzEnv(t, d)
			for _, r := range rows {
				op := ops[r.op]
				if op == nil {
					continue
				}
				t.Run(r.op, func(t *testing.T) {
					for _, who := range authzActors {
						t.Run(who, func(t *testing.T) { e.run(t, op, who, r.want[who]) })
					}
				})
			}
		})
	}
}

// authzSchemaOperations lists the Query and Mutation fields of graph/schema.
func authzSchemaOperations(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("schema", "*.graphqls"))
	if err != nil || len(files) == 0 {
		t.Fatalf("schema files: %v (%d found)", err, len(files))
	}
	var srcs []*ast.Source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, &ast.Source{Name: f, Input: string(b)})
	}
	s, err := gqlparser.LoadSchema(srcs...)
	if err != nil {
		t.Fatalf("load schema: %v", err)
	}
	var out []string
	for _, def := range []*ast.Definition{s.Query, s.Mutation} {
		if def == nil {
			continue
		}
		for _, f := range def.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				out = append(out, f.Name)
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// The environment shared by the cases of one dialect: one service, both
// example programmes, one identity per actor. Each case creates its own fresh
// objects (unique names, domains, course ids, grantees), so order does not
// matter and no case changes the grants of an actor.

type authzEnv struct {
	api         *testkit.API
	dialect     migrations.Dialect
	ctl, onc    testkit.Programme
	medway, kcc domain.Organisation
	tokens      map[string]string
	subjects    map[string]string
	issuers     map[string]string // the issuer of each actor's identity (default: the test issuer)
	actorIDs    map[string]string
	held        map[string][]string // grant IDs each actor holds
	visible     map[string][]string // programme IDs each actor may list (bootstrap: at least these)
	seq         int
	auditEnd    map[string]string // last audit cursor seen per programme

	// Learners (CTL-10). self is learnerMedway's own record, provisioned by its
	// first request through Medway's provider; medwayLearner and kccLearner
	// were created by the bootstrap admin.
	self, medwayLearner, kccLearner string
	// Identity providers registered at set-up: Medway's (a real issuer, the one
	// learnerMedway signs in with), Kent County Council's and the programme's own.
	medwayProvider, kccProvider, ctlProvider string
}

// The learner's identity at Medway's provider (CTL-3: a verified work email).
const (
	azLearnerSubject  = "amy"
	azLearnerEmail    = "amy@medway.gov.uk"
	azMedwayClientID  = "medway-rollcall"
	azLearnerDomain   = "medway.gov.uk"
	azOtherOrgDomain  = "kent.gov.uk"
	azFakeIssuerStart = "http://127.0.0.1:9/authz-idp-" // registered, never signs anything
)

func newAuthzEnv(t *testing.T, d migrations.Dialect) *authzEnv {
	api := testkit.NewAPI(t, d)
	e := &authzEnv{
		api:      api,
		dialect:  d,
		ctl:      testkit.SeedExample(t, api.Service, "connect-to-learn.yaml"),
		onc:      testkit.SeedExample(t, api.Service, "onclick.yaml"),
		tokens:   map[string]string{azAnonymous: ""},
		subjects: map[string]string{azBootstrap: testkit.BootstrapSubject},
		issuers:  map[string]string{},
		actorIDs: map[string]string{},
		held:     map[string][]string{},
		auditEnd: map[string]string{},
	}
	e.medway = authzMust(t, e.ctl.Orgs, "Medway Council")
	e.kcc = authzMust(t, e.ctl.Orgs, "Kent County Council")
	kentConnects := authzMust(t, e.ctl.Bodies, "Kent Connects").ID
	wscc := authzMust(t, e.onc.Bodies, "West Sussex County Council").ID

	grant := func(who, subject string, role domain.Role, programmeID string, org, body *string) {
		e.subjects[who] = subject
		g := api.Grant(subject, role, programmeID, org, body)
		e.held[who] = append(e.held[who], g.ID)
	}
	grant(azCTLAdmin, "ctl-admin", domain.RoleProgrammeAdmin, e.ctl.ID, nil, &kentConnects)
	grant(azOnclickAdmin, "onclick-admin", domain.RoleProgrammeAdmin, e.onc.ID, nil, &wscc)
	grant(azAuditor, "ctl-auditor", domain.RoleAuditor, e.ctl.ID, nil, nil)
	grant(azLMS, "ctl-lms", domain.RoleLMS, e.ctl.ID, nil, nil)
	grant(azOrgAdminMedway, "medway-admin", domain.RoleOrganisationAdmin, e.ctl.ID, &e.medway.ID, nil)
	e.subjects[azNoGrants] = "no-grants"
	for who := range e.subjects {
		e.issuers[who] = api.Issuer.URL()
	}

	// Medway's own identity provider: a real OIDC issuer, registered over the
	// API. Its first token for amy@medway.gov.uk provisions the learner.
	e.tokens[azBootstrap] = api.BootstrapToken()
	key, err := oidcissuer.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	idp := httptest.NewServer(mux)
	t.Cleanup(idp.Close)
	medwayIdP := oidcissuer.New(idp.URL, key)
	medwayIdP.Now = api.Clock.Now
	mux.Handle("/", medwayIdP.Handler())
	e.medwayProvider = e.registerProvider(t, e.medway.ID, medwayIdP.URL(), azMedwayClientID)
	e.kccProvider = e.registerProvider(t, e.kcc.ID, e.uniq(azFakeIssuerStart), "kcc-rollcall")
	e.ctlProvider = e.registerProvider(t, "", e.uniq(azFakeIssuerStart), "ctl-rollcall")
	verified := true
	tok, err := medwayIdP.Mint(oidcissuer.Claims{Subject: azLearnerSubject, Audience: []string{azMedwayClientID},
		Email: azLearnerEmail, EmailVerified: &verified})
	if err != nil {
		t.Fatal(err)
	}
	e.subjects[azLearnerMedway] = azLearnerSubject
	e.issuers[azLearnerMedway] = medwayIdP.URL()
	e.tokens[azLearnerMedway] = tok

	e.visible = map[string][]string{
		azBootstrap: {e.ctl.ID, e.onc.ID}, azCTLAdmin: {e.ctl.ID}, azOnclickAdmin: {e.onc.ID},
		azAuditor: {e.ctl.ID}, azLMS: {e.ctl.ID}, azOrgAdminMedway: {e.ctl.ID}, azNoGrants: {}, azLearnerMedway: {},
	}
	for who, sub := range e.subjects {
		if _, ok := e.tokens[who]; !ok {
			e.tokens[who] = api.Token(sub)
		}
		var v struct {
			Viewer struct {
				ActorID     string
				Learner     *struct{ ID string }
				SignInError *string
			}
		}
		api.Do(e.tokens[who], `{ viewer { actorId learner { id } signInError } }`, nil).Decode(t, &v)
		e.actorIDs[who] = v.Viewer.ActorID
		if who == azLearnerMedway {
			if v.Viewer.Learner == nil {
				t.Fatalf("the learner's first request did not provision them: signInError %q", authzStr(v.Viewer.SignInError))
			}
			e.self = v.Viewer.Learner.ID
		}
	}
	e.medwayLearner = e.newLearner(t, e.medway.ID)
	e.kccLearner = e.newLearner(t, e.kcc.ID)
	return e
}

func authzMust[V any](t *testing.T, m map[string]V, k string) V {
	t.Helper()
	v, ok := m[k]
	if !ok {
		t.Fatalf("seed has no %q", k)
	}
	return v
}

func (e *authzEnv) uniq(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s%d", prefix, e.seq)
}

// authzCall is one case: the request, and how to check its outcome.
type authzCall struct {
	query string
	vars  map[string]any
	// missing is the same request naming an object that does not exist; a
	// NOT_FOUND refusal must be indistinguishable from its answer (API.md).
	missing map[string]any
	// ok checks the data of an allowed call, the follow-up read and the audit entry.
	ok func(t *testing.T, data json.RawMessage)
	// unchanged checks, after a refusal, that the object the call would have
	// created or changed is as it was.
	unchanged func(t *testing.T)
}

type authzOp func(t *testing.T, e *authzEnv, who string) authzCall

func (e *authzEnv) run(t *testing.T, op authzOp, who, want string) {
	c := op(t, e, who) // the case's fixtures are written before the audit marks
	marks := map[string]string{e.ctl.ID: e.auditMark(t, e.ctl.ID), e.onc.ID: e.auditMark(t, e.onc.ID)}

	r := e.api.Do(e.tokens[who], c.query, c.vars)
	if want == azOK {
		if len(r.Errors) > 0 {
			t.Fatalf("want success, got %s: %s", r.Code(), authzErrs(r))
		}
		c.ok(t, r.Data)
		return
	}

	if len(r.Errors) == 0 {
		t.Fatalf("want %s, got success: %s", want, r.Data)
	}
	for _, er := range r.Errors {
		if code, _ := er.Extensions["code"].(string); code != want {
			t.Errorf("want %s, got %s", want, authzErrs(r))
			break
		}
	}
	authzNoData(t, r.Data)

	// A refusal writes nothing (invariant 5, CTL-12: no audit entry without a change).
	for pid, mark := range marks {
		if es := e.auditAfter(t, pid, mark); len(es) > 0 {
			t.Errorf("refused call (%s) wrote %d audit entries in programme %s: %+v", want, len(es), pid, es)
		}
	}
	if c.unchanged != nil {
		c.unchanged(t)
	}

	if want == "NOT_FOUND" && c.missing != nil {
		m := e.api.Do(e.tokens[who], c.query, c.missing)
		if len(m.Errors) == 0 || m.Code() != "NOT_FOUND" {
			t.Fatalf("the same call on a missing object: want NOT_FOUND, got %s", authzErrs(m))
		}
		if r.Errors[0].Message != m.Errors[0].Message || !reflect.DeepEqual(r.Errors[0].Extensions, m.Errors[0].Extensions) {
			t.Errorf("NOT_FOUND must be indistinguishable from a missing object (CTL-10):\n  hidden:  %q %v\n  missing: %q %v",
				r.Errors[0].Message, r.Errors[0].Extensions, m.Errors[0].Message, m.Errors[0].Extensions)
		}
	}
}

func authzErrs(r testkit.Response) string {
	var parts []string
	for _, er := range r.Errors {
		parts = append(parts, fmt.Sprintf("%v %q", er.Extensions["code"], er.Message))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// authzNoData: a refused call returns no data for its field.
func authzNoData(t *testing.T, data json.RawMessage) {
	t.Helper()
	if len(data) == 0 || string(data) == "null" {
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("data: %v", err)
	}
	for k, v := range m {
		if string(v) != "null" {
			t.Errorf("refused call returned data for %s: %s", k, v)
		}
	}
}

func authzDecode(t *testing.T, data json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

// boot runs a request as the bootstrap admin, failing the case on any error.
func (e *authzEnv) boot(t *testing.T, query string, vars map[string]any, out any) {
	t.Helper()
	r := e.api.Do(e.tokens[azBootstrap], query, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("bootstrap request failed: %s\n%s", authzErrs(r), query)
	}
	authzDecode(t, r.Data, out)
}

func authzWith(vars map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(vars))
	for kk, vv := range vars {
		out[kk] = vv
	}
	out[k] = v
	return out
}

func authzIDs[T any](xs []T, id func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

// ---------------------------------------------------------------------------
// Audit log, read as the bootstrap admin (CTL-12).

type authzAuditEntry struct {
	ActorID    string
	Action     string
	TargetType string
	TargetID   string
	Reason     string
	Details    map[string]any
}

func (e *authzEnv) auditPages(t *testing.T, programmeID string, targetID *string, after string) ([]authzAuditEntry, string) {
	t.Helper()
	var all []authzAuditEntry
	for {
		var out struct {
			AuditLog struct {
				Edges    []struct{ Node authzAuditEntry }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		e.boot(t, `query($p: ID!, $t: ID, $a: String) { auditLog(programmeId: $p, targetId: $t, first: 200, after: $a) {
			edges { node { actorId action targetType targetId reason details } } pageInfo { hasNextPage endCursor } } }`,
			map[string]any{"p": programmeID, "t": targetID, "a": after}, &out)
		for _, ed := range out.AuditLog.Edges {
			all = append(all, ed.Node)
		}
		if out.AuditLog.PageInfo.EndCursor != nil {
			after = *out.AuditLog.PageInfo.EndCursor
		}
		if !out.AuditLog.PageInfo.HasNextPage {
			return all, after
		}
	}
}

// auditMark returns the cursor of the programme's latest audit entry.
func (e *authzEnv) auditMark(t *testing.T, programmeID string) string {
	t.Helper()
	_, end := e.auditPages(t, programmeID, nil, e.auditEnd[programmeID])
	e.auditEnd[programmeID] = end
	return end
}

func (e *authzEnv) auditAfter(t *testing.T, programmeID, mark string) []authzAuditEntry {
	t.Helper()
	es, _ := e.auditPages(t, programmeID, nil, mark)
	return es
}

// expectAudit finds the entry of action on target by who (CTL-12: every admin
// action is in the audit log with its actor).
func (e *authzEnv) expectAudit(t *testing.T, programmeID, targetID, action, who string, match func(authzAuditEntry) bool) {
	t.Helper()
	es, _ := e.auditPages(t, programmeID, &targetID, "")
	for _, en := range es {
		if en.Action == action && en.ActorID == e.actorIDs[who] && (match == nil || match(en)) {
			return
		}
	}
	t.Errorf("no %q audit entry by %s (%s) on %s; entries on the target: %+v", action, who, e.actorIDs[who], targetID, es)
}

// ---------------------------------------------------------------------------
// Follow-up reads and fixtures, as the bootstrap admin.

type authzProgrammeState struct {
	Settings struct{ MinimumAge int }
	Courses  []struct{ ID, LmsCourseID string }
	Policies []struct {
		ID, Name       string
		CurrentVersion *struct{ ID string }
		Versions       []struct{ ID string }
	}
}

func (e *authzEnv) programmeState(t *testing.T, id string) authzProgrammeState {
	t.Helper()
	var out struct{ Programme authzProgrammeState }
	e.boot(t, `query($id: ID!) { programme(id: $id) { settings { minimumAge } courses { id lmsCourseId }
		policies { id name currentVersion { id } versions { id } } } }`, map[string]any{"id": id}, &out)
	return out.Programme
}

type authzOrgState struct {
	Domains      []struct{ ID, Domain string }
	AccessGroups []struct {
		ID, Name string
		Courses  []struct{ ID string }
	}
}

func (e *authzEnv) orgState(t *testing.T, id string) authzOrgState {
	t.Helper()
	var out struct{ Organisation authzOrgState }
	e.boot(t, `query($id: ID!) { organisation(id: $id) { domains { id domain } accessGroups { id name courses { id } } } }`,
		map[string]any{"id": id}, &out)
	return out.Organisation
}

func (s authzOrgState) groupCourses(groupID string) ([]string, bool) {
	for _, g := range s.AccessGroups {
		if g.ID == groupID {
			ids := authzIDs(g.Courses, func(c struct{ ID string }) string { return c.ID })
			slices.Sort(ids)
			return ids, true
		}
	}
	return nil, false
}

type authzProposal struct {
	ID, Name, Status string
	Approvals        []struct{ GoverningBodyID, ActorID string }
}

func (e *authzEnv) proposal(t *testing.T, id string) (authzProposal, bool) {
	t.Helper()
	var out struct{ MembershipProposals []authzProposal }
	e.boot(t, `query($p: ID!) { membershipProposals(programmeId: $p) { id name status approvals { governingBodyId actorId } } }`,
		map[string]any{"p": e.ctl.ID}, &out)
	for _, p := range out.MembershipProposals {
		if p.ID == id || p.Name == id {
			return p, true
		}
	}
	return authzProposal{}, false
}

type authzGrant struct {
	ID, Role, Subject, ProgrammeID  string
	OrganisationID, GoverningBodyID *string
}

func (e *authzEnv) roleGrants(t *testing.T, programmeID string) []authzGrant {
	t.Helper()
	var out struct{ RoleGrants []authzGrant }
	e.boot(t, `query($p: ID!) { roleGrants(programmeId: $p) { id role subject programmeId organisationId governingBodyId } }`,
		map[string]any{"p": programmeID}, &out)
	return out.RoleGrants
}

// viewerRoles is what a subject of the test issuer sees of its own grants.
func (e *authzEnv) viewerRoles(t *testing.T, subject string) []authzGrant {
	t.Helper()
	var out struct{ Viewer struct{ Roles []authzGrant } }
	r := e.api.Do(e.api.Token(subject), `{ viewer { roles { id role subject programmeId organisationId governingBodyId } } }`, nil)
	r.Decode(t, &out)
	return out.Viewer.Roles
}

func (e *authzEnv) newProposal(t *testing.T) string {
	t.Helper()
	var out struct{ ProposeMembership struct{ ID string } }
	e.boot(t, `mutation($in: ProposeMembershipInput!) { proposeMembership(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"programmeId": e.ctl.ID, "action": "ADMIT", "name": e.uniq("Authz Fixture Partner "), "kind": "OTHER",
		"domains": []any{map[string]any{"domain": e.uniq("authz-fixture-") + ".org.uk"}}, "reason": "authorisation matrix fixture",
	}}, &out)
	return out.ProposeMembership.ID
}

func (e *authzEnv) newDomain(t *testing.T, orgID string) (id, name string) {
	t.Helper()
	name = e.uniq("authz-fixture-domain-") + ".org.uk"
	var out struct{ AddEmailDomain struct{ ID string } }
	e.boot(t, `mutation($o: ID!, $d: String!) { addEmailDomain(organisationId: $o, domain: $d) { id } }`,
		map[string]any{"o": orgID, "d": name}, &out)
	return out.AddEmailDomain.ID, name
}

func (e *authzEnv) newGroup(t *testing.T, orgID string, courseIDs ...string) string {
	t.Helper()
	var out struct{ CreateAccessGroup struct{ ID string } }
	e.boot(t, `mutation($o: ID!, $in: AccessGroupInput!) { createAccessGroup(organisationId: $o, input: $in) { id } }`,
		map[string]any{"o": orgID, "in": map[string]any{"name": e.uniq("Authz fixture group "), "courseIds": courseIDs}}, &out)
	return out.CreateAccessGroup.ID
}

func (e *authzEnv) newPolicy(t *testing.T) string {
	t.Helper()
	var out struct{ CreatePolicy struct{ ID string } }
	e.boot(t, `mutation($p: ID!, $in: PolicyInput!) { createPolicy(programmeId: $p, input: $in) { id } }`,
		map[string]any{"p": e.ctl.ID, "in": map[string]any{"name": e.uniq("Authz fixture policy "), "type": "OTHER",
			"audience": "AUTHENTICATED", "compulsory": false}}, &out)
	return out.CreatePolicy.ID
}

func (e *authzEnv) course(t *testing.T, lmsID string) string {
	t.Helper()
	return authzMust(t, e.ctl.Courses, lmsID).ID
}

// registerProvider registers an identity provider as the bootstrap admin:
// the organisation's own, or (orgID "") the programme's.
func (e *authzEnv) registerProvider(t *testing.T, orgID, issuer, clientID string) string {
	t.Helper()
	in := map[string]any{"issuer": issuer, "clientId": clientID}
	if orgID == "" {
		var out struct{ RegisterProgrammeIdentityProvider struct{ ID string } }
		e.boot(t, `mutation($p: ID!, $in: IdentityProviderInput!) { registerProgrammeIdentityProvider(programmeId: $p, input: $in) { id } }`,
			map[string]any{"p": e.ctl.ID, "in": in}, &out)
		return out.RegisterProgrammeIdentityProvider.ID
	}
	var out struct{ RegisterIdentityProvider struct{ ID string } }
	e.boot(t, `mutation($o: ID!, $in: IdentityProviderInput!) { registerIdentityProvider(organisationId: $o, input: $in) { id } }`,
		map[string]any{"o": orgID, "in": in}, &out)
	return out.RegisterIdentityProvider.ID
}

type authzProvider struct {
	ID, ProgrammeID, Issuer, ClientID, Audience, EmailTrust string
	OrganisationID                                          *string
	HasClientSecret                                         bool
}

const authzProviderFields = `id programmeId organisationId issuer clientId audience emailTrust hasClientSecret`

func (e *authzEnv) providers(t *testing.T) []authzProvider {
	t.Helper()
	var out struct{ IdentityProviders []authzProvider }
	e.boot(t, `query($p: ID!) { identityProviders(programmeId: $p) { `+authzProviderFields+` } }`, map[string]any{"p": e.ctl.ID}, &out)
	return out.IdentityProviders
}

// freeProvider makes room for a case registering an organisation's provider
// (one per organisation): it takes the organisation's provider out of the
// database for the case and puts it back afterwards, with any provider the
// case registered removed. Fixture plumbing only, below the API: nothing is
// audited, and the verifier's cache is left alone (no token of a removed
// issuer is presented while it is out).
func (e *authzEnv) freeProvider(t *testing.T, orgID string) {
	t.Helper()
	ctx := context.Background()
	ps, err := e.api.Store.ProvidersByProgramme(ctx, e.ctl.ID)
	if err != nil {
		t.Fatal(err)
	}
	var saved []domain.IdentityProvider
	for _, p := range ps {
		if p.OrganisationID != nil && *p.OrganisationID == orgID {
			saved = append(saved, p)
		}
	}
	q := `DELETE FROM identity_providers WHERE organisation_id = ?`
	if e.dialect == migrations.Postgres {
		q = `DELETE FROM identity_providers WHERE organisation_id = $1`
	}
	del := func(t *testing.T) {
		if _, err := e.api.Store.SQL().ExecContext(ctx, q, orgID); err != nil {
			t.Fatalf("free the provider of %s: %v", orgID, err)
		}
	}
	del(t)
	t.Cleanup(func() {
		del(t)
		for _, p := range saved {
			if err := e.api.Store.CreateProvider(ctx, p); err != nil {
				t.Fatalf("restore provider %s: %v", p.Issuer, err)
			}
		}
	})
}

type authzLearner struct {
	ID                    string
	Email                 *string
	GivenName, FamilyName *string
	Status                string
	Organisation          struct{ ID string }
	Acceptances           []authzAcceptance
}

type authzAcceptance struct {
	PolicyVersion           struct{ ID string }
	Decision, GivenBy, Note string
}

const authzLearnerFields = `id email givenName familyName status organisation { id } acceptances { policyVersion { id } decision givenBy note }`

// learner reads a learner as the bootstrap admin.
func (e *authzEnv) learner(t *testing.T, id string) authzLearner {
	t.Helper()
	var out struct{ Learner *authzLearner }
	e.boot(t, `query($id: ID!) { learner(id: $id) { `+authzLearnerFields+` } }`, map[string]any{"id": id}, &out)
	if out.Learner == nil {
		t.Fatalf("learner %s vanished", id)
	}
	return *out.Learner
}

// learnersByEmail finds learners of Connect to Learn whose email contains s.
func (e *authzEnv) learnersByEmail(t *testing.T, s string) []authzLearner {
	t.Helper()
	var out struct {
		Learners struct{ Edges []struct{ Node authzLearner } }
	}
	e.boot(t, `query($p: ID!, $s: String) { learners(programmeId: $p, search: $s, first: 500) { edges { node { `+authzLearnerFields+` } } } }`,
		map[string]any{"p": e.ctl.ID, "s": s}, &out)
	return authzMap(out.Learners.Edges, func(ed struct{ Node authzLearner }) authzLearner { return ed.Node })
}

func (l authzLearner) decision(versionID string) (authzAcceptance, bool) {
	for _, a := range l.Acceptances {
		if a.PolicyVersion.ID == versionID {
			return a, true
		}
	}
	return authzAcceptance{}, false
}

// newLearner creates a learner of the organisation as the bootstrap admin.
func (e *authzEnv) newLearner(t *testing.T, orgID string) string {
	t.Helper()
	dom := azLearnerDomain
	if orgID == e.kcc.ID {
		dom = azOtherOrgDomain
	}
	var out struct{ CreateLearner struct{ ID string } }
	e.boot(t, `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id } }`,
		map[string]any{"o": orgID, "in": map[string]any{"email": e.uniq("authz.fixture.") + "@" + dom,
			"givenName": "Fixture", "familyName": "Learner"}}, &out)
	return out.CreateLearner.ID
}

// newOptionalVersion publishes the current version of a fresh optional
// policy: accepting or declining it leaves the learner's status (and so the
// other cases) as it was.
func (e *authzEnv) newOptionalVersion(t *testing.T) string {
	t.Helper()
	pid := e.newPolicy(t)
	var out struct{ PublishPolicyVersion struct{ ID string } }
	e.boot(t, `mutation($id: ID!, $in: PolicyVersionInput!) { publishPolicyVersion(policyId: $id, input: $in) { id } }`,
		map[string]any{"id": pid, "in": map[string]any{"label": "v1", "summary": "matrix", "content": "Optional policy text.", "activate": true}}, &out)
	return out.PublishPolicyVersion.ID
}

// learnerTarget resolves a learner operation's target to a learner ID: for
// mutations (fresh) a new learner of the organisation, for reads the one of
// the set-up; @self is always learnerMedway's own record.
func (e *authzEnv) learnerTarget(t *testing.T, target string, fresh bool) (id, orgID string) {
	t.Helper()
	switch {
	case target == "self":
		return e.self, e.medway.ID
	case fresh:
		o := e.org(target)
		return e.newLearner(t, o.ID), o.ID
	case target == "ownOrg":
		return e.medwayLearner, e.medway.ID
	default:
		return e.kccLearner, e.kcc.ID
	}
}

func authzMap[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

func authzStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// org resolves an @ownOrg / @otherOrg target.
func (e *authzEnv) org(target string) domain.Organisation {
	if target == "ownOrg" {
		return e.medway
	}
	return e.kcc
}

// ---------------------------------------------------------------------------
// The operations. Keys are the matrix's operation column.

func authzOperations() map[string]authzOp {
	ops := map[string]authzOp{
		"viewer":                         azOpViewer,
		"programmes":                     azOpProgrammes,
		"programme":                      azOpProgramme(false),
		"programme@otherProgramme":       azOpProgramme(true),
		"rules":                          azOpRules,
		"roleGrants":                     azOpRoleGrants,
		"membershipProposals":            azOpMembershipProposals,
		"auditLog":                       azOpAuditLog,
		"createProgramme":                azOpCreateProgramme,
		"updateProgrammeRules":           azOpUpdateProgrammeRules,
		"proposeMembership":              azOpProposeMembership,
		"approveMembership":              azOpApproveMembership,
		"rejectMembership":               azOpRejectMembership,
		"createCourse":                   azOpCreateCourse,
		"createPolicy":                   azOpCreatePolicy,
		"publishPolicyVersion":           azOpPublishPolicyVersion,
		"grantRole@auditorRole":          azOpGrantRole(domain.RoleAuditor, ""),
		"grantRole@programmeAdminRole":   azOpGrantRole(domain.RoleProgrammeAdmin, ""),
		"grantRole@ownOrgAdmin":          azOpGrantRole(domain.RoleOrganisationAdmin, "ownOrg"),
		"grantRole@otherOrgAdmin":        azOpGrantRole(domain.RoleOrganisationAdmin, "otherOrg"),
		"revokeRole@auditorGrant":        azOpRevokeRole(domain.RoleAuditor, ""),
		"revokeRole@ownOrgAdminGrant":    azOpRevokeRole(domain.RoleOrganisationAdmin, "ownOrg"),
		"revokeRole@otherOrgAdminGrant":  azOpRevokeRole(domain.RoleOrganisationAdmin, "otherOrg"),
		"revokeRole@otherProgrammeGrant": azOpRevokeRole(domain.RoleAuditor, "otherProgramme"),
	}
	for _, target := range []string{"ownOrg", "otherOrg"} {
		ops["organisation@"+target] = azOpOrganisation(target)
		ops["addEmailDomain@"+target] = azOpAddEmailDomain(target)
		ops["removeEmailDomain@"+target] = azOpRemoveEmailDomain(target)
		ops["createAccessGroup@"+target] = azOpCreateAccessGroup(target)
		ops["setAccessGroupCourses@"+target] = azOpSetAccessGroupCourses(target)
		ops["learners@"+target] = azOpLearners(target)
		ops["registerIdentityProvider@"+target] = azOpRegisterIdentityProvider(target)
		ops["createLearner@"+target] = azOpCreateLearner(target)
		ops["importLearners@"+target] = azOpImportLearners(target)
	}
	for _, target := range []string{"self", "ownOrg", "otherOrg"} {
		ops["learner@"+target] = azOpLearner(target)
		ops["retention@"+target] = azOpRetention(target)
		ops["updateLearner@"+target] = azOpUpdateLearner(target)
		ops["acceptPoliciesOnBehalf@"+target] = azOpAcceptPoliciesOnBehalf(target)
	}
	ops["learners"] = azOpLearners("")
	ops["identityProviders"] = azOpIdentityProviders
	ops["registerProgrammeIdentityProvider"] = azOpRegisterIdentityProvider("")
	ops["acceptPolicies"] = azOpAcceptPolicies(false)
	ops["declinePolicies"] = azOpAcceptPolicies(true)
	ops["updateMyProfile"] = azOpUpdateMyProfile
	return ops
}

func azOpViewer(t *testing.T, e *authzEnv, who string) authzCall {
	return authzCall{
		query: `{ viewer { subject issuer actorId bootstrapAdmin roles { id role subject programmeId organisationId governingBodyId }
			learner { id status organisation { id } } accessAllowed pendingPolicies { id } signInError } }`,
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				Viewer struct {
					Subject, Issuer, ActorID string
					BootstrapAdmin           bool
					Roles                    []authzGrant
					Learner                  *struct {
						ID, Status   string
						Organisation struct{ ID string }
					}
					AccessAllowed   bool
					PendingPolicies []struct{ ID string }
					SignInError     *string
				}
			}
			authzDecode(t, data, &out)
			v := out.Viewer
			if v.Subject != e.subjects[who] || v.Issuer != e.issuers[who] || v.ActorID != e.actorIDs[who] {
				t.Errorf("viewer is %s@%s (%s), want %s@%s", v.Subject, v.Issuer, v.ActorID, e.subjects[who], e.issuers[who])
			}
			if v.BootstrapAdmin != (who == azBootstrap) {
				t.Errorf("bootstrapAdmin = %v", v.BootstrapAdmin)
			}
			pending := authzMap(v.PendingPolicies, func(p struct{ ID string }) string { return p.ID })
			switch who {
			case azLearnerMedway:
				// Signed in through Medway's provider: the learner record is theirs,
				// still to accept the programme's compulsory policies (CTL-5).
				if v.Learner == nil || v.Learner.ID != e.self || v.Learner.Organisation.ID != e.medway.ID || v.SignInError != nil {
					t.Errorf("viewer.learner = %+v (signInError %q), want %s of Medway Council", v.Learner, authzStr(v.SignInError), e.self)
				} else if v.AccessAllowed != (v.Learner.Status == "ACTIVE") {
					t.Errorf("accessAllowed = %v with status %s", v.AccessAllowed, v.Learner.Status)
				}
				slices.Sort(pending)
				if want := e.compulsoryVersions(t); !slices.Equal(pending, want) {
					t.Errorf("pendingPolicies = %v, want the current compulsory versions %v", pending, want)
				}
			case azNoGrants:
				// No grant, and its issuer is no learner provider: not signed in as a learner, and told why.
				if v.Learner != nil || v.AccessAllowed || len(pending) != 0 || v.SignInError == nil ||
					!strings.Contains(*v.SignInError, "ISSUER_NOT_A_PROVIDER") {
					t.Errorf("identity without grants: learner %+v, accessAllowed %v, pending %v, signInError %q",
						v.Learner, v.AccessAllowed, pending, authzStr(v.SignInError))
				}
			default:
				// Admins are not learners, and were never tried as one.
				if v.Learner != nil || v.AccessAllowed || len(pending) != 0 || v.SignInError != nil {
					t.Errorf("admin viewer: learner %+v, accessAllowed %v, pending %v, signInError %q",
						v.Learner, v.AccessAllowed, pending, authzStr(v.SignInError))
				}
			}
			got := authzIDs(v.Roles, func(g authzGrant) string { return g.ID })
			if who == azBootstrap {
				// It holds no grant in the seeded programmes, only those it created.
				for _, g := range v.Roles {
					if g.ProgrammeID == e.ctl.ID || g.ProgrammeID == e.onc.ID || g.Role != string(domain.RoleProgrammeAdmin) {
						t.Errorf("bootstrap admin holds unexpected grant %+v", g)
					}
				}
				return
			}
			slices.Sort(got)
			want := slices.Clone(e.held[who])
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("viewer.roles = %+v, want the grants %v", v.Roles, want)
			}
		},
	}
}

// compulsoryVersions lists the current versions of Connect to Learn's compulsory policies, sorted.
func (e *authzEnv) compulsoryVersions(t *testing.T) []string {
	t.Helper()
	var out struct {
		Programme struct {
			Policies []struct {
				Compulsory     bool
				CurrentVersion *struct{ ID string }
			}
		}
	}
	e.boot(t, `query($id: ID!) { programme(id: $id) { policies { compulsory currentVersion { id } } } }`, map[string]any{"id": e.ctl.ID}, &out)
	var ids []string
	for _, p := range out.Programme.Policies {
		if p.Compulsory && p.CurrentVersion != nil {
			ids = append(ids, p.CurrentVersion.ID)
		}
	}
	if len(ids) == 0 {
		t.Fatalf("Connect to Learn has no compulsory policy")
	}
	slices.Sort(ids)
	return ids
}

func azOpProgrammes(t *testing.T, e *authzEnv, who string) authzCall {
	return authzCall{
		query: `{ programmes { id name } }`,
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct{ Programmes []struct{ ID, Name string } }
			authzDecode(t, data, &out)
			got := authzIDs(out.Programmes, func(p struct{ ID, Name string }) string { return p.ID })
			want := e.visible[who]
			if who == azBootstrap {
				for _, id := range want {
					if !slices.Contains(got, id) {
						t.Errorf("bootstrap admin's programmes %v lack %s", got, id)
					}
				}
				return
			}
			slices.Sort(got)
			want = slices.Clone(want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("programmes = %v, want only those with a grant: %v", out.Programmes, want)
			}
		},
	}
}

func azOpProgramme(other bool) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		p, name, course := e.ctl, "Connect to Learn", "CTL-GDPR-101"
		if other {
			p, name, course = e.onc, "Learn Public Health (West Sussex)", "ONC-MECC-101"
		}
		vars := map[string]any{"id": p.ID}
		return authzCall{
			query: `query($id: ID!) { programme(id: $id) { id name governingBodies { id name } organisations { id name }
				courses { id lmsCourseId } policies { id name } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					Programme *struct {
						ID, Name        string
						GoverningBodies []struct{ ID, Name string }
						Organisations   []struct{ ID, Name string }
						Courses         []struct{ ID, LmsCourseID string }
						Policies        []struct{ ID, Name string }
					}
				}
				authzDecode(t, data, &out)
				got := out.Programme
				if got == nil || got.ID != p.ID || got.Name != name {
					t.Fatalf("programme = %+v, want %s %q", got, p.ID, name)
				}
				if len(got.GoverningBodies) != len(p.Bodies) {
					t.Errorf("governingBodies = %+v, want %d", got.GoverningBodies, len(p.Bodies))
				}
				if !slices.ContainsFunc(got.Courses, func(c struct{ ID, LmsCourseID string }) bool { return c.LmsCourseID == course }) {
					t.Errorf("courses %+v lack %s", got.Courses, course)
				}
				if len(got.Policies) == 0 {
					t.Errorf("no policies")
				}
				orgs := authzIDs(got.Organisations, func(o struct{ ID, Name string }) string { return o.ID })
				switch who {
				case azOrgAdminMedway: // "An organisation admin sees only their own organisation."
					if !slices.Equal(orgs, []string{e.medway.ID}) {
						t.Errorf("organisation admin sees organisations %+v, want only Medway Council", got.Organisations)
					}
				case azLMS: // organisations are not the LMS's to read (organisation: NOT_FOUND)
					if len(orgs) != 0 {
						t.Errorf("LMS sees organisations %+v", got.Organisations)
					}
				default:
					for _, o := range p.Orgs {
						if !slices.Contains(orgs, o.ID) {
							t.Errorf("programme staff do not see partner %q", o.Name)
						}
					}
				}
			},
		}
	}
}

func azOpRules(t *testing.T, e *authzEnv, who string) authzCall {
	vars := map[string]any{"p": e.ctl.ID}
	return authzCall{
		query:   `query($p: ID!) { rules(programmeId: $p) { id source text } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				Rules []struct{ ID, Source, Text string }
			}
			authzDecode(t, data, &out)
			ids := authzIDs(out.Rules, func(r struct{ ID, Source, Text string }) string { return r.ID })
			for _, want := range []string{"CTL-1", "CTL-10", "CTL-12"} {
				if !slices.Contains(ids, want) {
					t.Errorf("rules %v lack %s", ids, want)
				}
			}
			for _, id := range ids {
				if strings.HasPrefix(id, "ONC-") {
					t.Errorf("Connect to Learn runs under Onclick rule %s", id)
				}
			}
		},
	}
}

func azOpRoleGrants(t *testing.T, e *authzEnv, who string) authzCall {
	vars := map[string]any{"p": e.ctl.ID}
	return authzCall{
		query:   `query($p: ID!) { roleGrants(programmeId: $p) { id role subject programmeId organisationId governingBodyId } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct{ RoleGrants []authzGrant }
			authzDecode(t, data, &out)
			ids := authzIDs(out.RoleGrants, func(g authzGrant) string { return g.ID })
			for _, who := range []string{azCTLAdmin, azAuditor, azLMS, azOrgAdminMedway} {
				for _, id := range e.held[who] {
					if !slices.Contains(ids, id) {
						t.Errorf("roleGrants lack the grant of %s", who)
					}
				}
			}
			for _, g := range out.RoleGrants {
				if g.ProgrammeID != e.ctl.ID {
					t.Errorf("roleGrants of Connect to Learn lists a grant of another programme: %+v", g)
				}
			}
		},
	}
}

func azOpOrganisation(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		vars := map[string]any{"id": o.ID}
		return authzCall{
			query:   `query($id: ID!) { organisation(id: $id) { id name programmeId status domains { domain } accessGroups { name isDefault } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					Organisation *struct {
						ID, Name, ProgrammeID, Status string
						Domains                       []struct{ Domain string }
						AccessGroups                  []struct {
							Name      string
							IsDefault bool
						}
					}
				}
				authzDecode(t, data, &out)
				got := out.Organisation
				if got == nil || got.ID != o.ID || got.Name != o.Name || got.ProgrammeID != e.ctl.ID || got.Status != "ADMITTED" {
					t.Fatalf("organisation = %+v, want %s %q", got, o.ID, o.Name)
				}
				wantDomain := map[string]string{"Medway Council": "medway.gov.uk", "Kent County Council": "kent.gov.uk"}[o.Name]
				if !slices.ContainsFunc(got.Domains, func(d struct{ Domain string }) bool { return d.Domain == wantDomain }) {
					t.Errorf("domains %+v lack %s", got.Domains, wantDomain)
				}
				if !slices.ContainsFunc(got.AccessGroups, func(g struct {
					Name      string
					IsDefault bool
				}) bool {
					return g.IsDefault
				}) {
					t.Errorf("no default access group in %+v", got.AccessGroups)
				}
			},
		}
	}
}

func azOpMembershipProposals(t *testing.T, e *authzEnv, who string) authzCall {
	id := e.newProposal(t)
	vars := map[string]any{"p": e.ctl.ID}
	return authzCall{
		query:   `query($p: ID!) { membershipProposals(programmeId: $p) { id programmeId status name } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				MembershipProposals []struct{ ID, ProgrammeID, Status, Name string }
			}
			authzDecode(t, data, &out)
			for _, p := range out.MembershipProposals {
				if p.ID == id {
					if p.Status != "PENDING" || p.ProgrammeID != e.ctl.ID {
						t.Errorf("proposal %+v, want PENDING in Connect to Learn", p)
					}
					return
				}
			}
			t.Errorf("membershipProposals %+v lack the fresh proposal %s", out.MembershipProposals, id)
		},
	}
}

func azOpAuditLog(t *testing.T, e *authzEnv, who string) authzCall {
	vars := map[string]any{"p": e.ctl.ID, "t": e.ctl.ID}
	return authzCall{
		query:   `query($p: ID!, $t: ID) { auditLog(programmeId: $p, targetId: $t, first: 50) { edges { cursor node { action targetType targetId } } } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				AuditLog struct {
					Edges []struct {
						Cursor string
						Node   struct{ Action, TargetType, TargetID string }
					}
				}
			}
			authzDecode(t, data, &out)
			for _, ed := range out.AuditLog.Edges {
				if ed.Node.TargetID != e.ctl.ID {
					t.Errorf("targetId filter not applied: %+v", ed.Node)
				}
				if ed.Node.Action == "programme.create" {
					return
				}
			}
			t.Errorf("the audit log of Connect to Learn has no programme.create entry: %+v", out.AuditLog.Edges)
		},
	}
}

func azOpCreateProgramme(t *testing.T, e *authzEnv, who string) authzCall {
	name := e.uniq("Authz Programme ")
	return authzCall{
		query: `mutation($in: CreateProgrammeInput!) { createProgramme(input: $in) { id name preset governingBodies { name role } } }`,
		vars: map[string]any{"in": map[string]any{"name": name, "preset": "ONCLICK",
			"governingBodies": []any{map[string]any{"name": "Authz Controller", "role": "CONTROLLER"}}}},
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				CreateProgramme struct {
					ID, Name, Preset string
					GoverningBodies  []struct{ Name, Role string }
				}
			}
			authzDecode(t, data, &out)
			p := out.CreateProgramme
			if p.Name != name || p.Preset != "ONCLICK" || len(p.GoverningBodies) != 1 || p.GoverningBodies[0].Role != "CONTROLLER" {
				t.Fatalf("createProgramme = %+v", p)
			}
			var read struct{ Programme struct{ ID, Name string } }
			e.boot(t, `query($id: ID!) { programme(id: $id) { id name } }`, map[string]any{"id": p.ID}, &read)
			if read.Programme.Name != name {
				t.Errorf("follow-up read: %+v", read.Programme)
			}
			// The creator becomes a programme admin of it.
			if !slices.ContainsFunc(e.roleGrants(t, p.ID), func(g authzGrant) bool {
				return g.Subject == e.subjects[who] && g.Role == string(domain.RoleProgrammeAdmin)
			}) {
				t.Errorf("the creator holds no PROGRAMME_ADMIN grant in the new programme")
			}
			e.expectAudit(t, p.ID, p.ID, "programme.create", who, nil)
		},
		unchanged: func(t *testing.T) {
			var out struct{ Programmes []struct{ Name string } }
			e.boot(t, `{ programmes { name } }`, nil, &out)
			if slices.Contains(authzIDs(out.Programmes, func(p struct{ Name string }) string { return p.Name }), name) {
				t.Errorf("refused createProgramme created %q", name)
			}
		},
	}
}

func azOpUpdateProgrammeRules(t *testing.T, e *authzEnv, who string) authzCall {
	before := e.programmeState(t, e.ctl.ID).Settings.MinimumAge
	age := 30 + e.seq%60
	if age == before {
		age++
	}
	reason := e.uniq("authorisation matrix rules change ")
	vars := map[string]any{"p": e.ctl.ID, "in": map[string]any{"minimumAge": age, "reason": reason}}
	return authzCall{
		query:   `mutation($p: ID!, $in: RuleSettingsInput!) { updateProgrammeRules(programmeId: $p, input: $in) { id settings { minimumAge } } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				UpdateProgrammeRules struct {
					ID       string
					Settings struct{ MinimumAge int }
				}
			}
			authzDecode(t, data, &out)
			if out.UpdateProgrammeRules.ID != e.ctl.ID || out.UpdateProgrammeRules.Settings.MinimumAge != age {
				t.Fatalf("updateProgrammeRules = %+v, want minimumAge %d", out.UpdateProgrammeRules, age)
			}
			if got := e.programmeState(t, e.ctl.ID).Settings.MinimumAge; got != age {
				t.Errorf("follow-up read: minimumAge %d, want %d", got, age)
			}
			e.expectAudit(t, e.ctl.ID, e.ctl.ID, "programme.rules.update", who, func(en authzAuditEntry) bool { return en.Reason == reason })
		},
		unchanged: func(t *testing.T) {
			if got := e.programmeState(t, e.ctl.ID).Settings.MinimumAge; got != before {
				t.Errorf("refused updateProgrammeRules changed minimumAge %d → %d", before, got)
			}
		},
	}
}

func azOpProposeMembership(t *testing.T, e *authzEnv, who string) authzCall {
	name := e.uniq("Authz Partner ")
	dom := e.uniq("authz-partner-") + ".org.uk"
	in := func(p string) map[string]any {
		return map[string]any{"in": map[string]any{"programmeId": p, "action": "ADMIT", "name": name, "kind": "OTHER",
			"domains": []any{map[string]any{"domain": dom}}, "reason": "authorisation matrix"}}
	}
	return authzCall{
		query: `mutation($in: ProposeMembershipInput!) { proposeMembership(input: $in) { id programmeId action status name
			domains { domain } approvals { governingBodyId } } }`,
		vars:    in(e.ctl.ID),
		missing: in(uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				ProposeMembership struct {
					ID, ProgrammeID, Action, Status, Name string
					Domains                               []struct{ Domain string }
					Approvals                             []struct{ GoverningBodyID string }
				}
			}
			authzDecode(t, data, &out)
			p := out.ProposeMembership
			if p.ProgrammeID != e.ctl.ID || p.Action != "ADMIT" || p.Status != "PENDING" || p.Name != name ||
				len(p.Domains) != 1 || p.Domains[0].Domain != dom || len(p.Approvals) != 0 {
				t.Fatalf("proposeMembership = %+v", p)
			}
			if got, ok := e.proposal(t, p.ID); !ok || got.Status != "PENDING" {
				t.Errorf("follow-up read: %+v (found %v)", got, ok)
			}
			e.expectAudit(t, e.ctl.ID, p.ID, "membership.propose", who, nil)
		},
		unchanged: func(t *testing.T) {
			if p, ok := e.proposal(t, name); ok {
				t.Errorf("refused proposeMembership created %+v", p)
			}
		},
	}
}

func azOpApproveMembership(t *testing.T, e *authzEnv, who string) authzCall {
	id := e.newProposal(t)
	kentConnects := e.ctl.Bodies["Kent Connects"].ID
	vars := map[string]any{"id": id, "note": "authorisation matrix"}
	return authzCall{
		query:   `mutation($id: ID!, $note: String) { approveMembership(proposalId: $id, note: $note) { id status approvals { governingBodyId actorId note } } }`,
		vars:    vars,
		missing: authzWith(vars, "id", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				ApproveMembership struct {
					ID, Status string
					Approvals  []struct{ GoverningBodyID, ActorID, Note string }
				}
			}
			authzDecode(t, data, &out)
			p := out.ApproveMembership
			// CTL-1: one of two governing bodies has approved; nothing applied yet.
			if p.ID != id || p.Status != "PENDING" || len(p.Approvals) != 1 ||
				p.Approvals[0].GoverningBodyID != kentConnects || p.Approvals[0].ActorID != e.actorIDs[who] {
				t.Fatalf("approveMembership = %+v, want PENDING with Kent Connects' approval", p)
			}
			if got, _ := e.proposal(t, id); got.Status != "PENDING" || len(got.Approvals) != 1 {
				t.Errorf("follow-up read: %+v", got)
			}
			e.expectAudit(t, e.ctl.ID, id, "membership.approve", who, func(en authzAuditEntry) bool {
				return en.Details["governingBodyId"] == kentConnects
			})
		},
		unchanged: func(t *testing.T) {
			if got, _ := e.proposal(t, id); got.Status != "PENDING" || len(got.Approvals) != 0 {
				t.Errorf("refused approveMembership changed the proposal: %+v", got)
			}
		},
	}
}

func azOpRejectMembership(t *testing.T, e *authzEnv, who string) authzCall {
	id := e.newProposal(t)
	vars := map[string]any{"id": id, "reason": "authorisation matrix"}
	return authzCall{
		query:   `mutation($id: ID!, $reason: String!) { rejectMembership(proposalId: $id, reason: $reason) { id status decidedAt } }`,
		vars:    vars,
		missing: authzWith(vars, "id", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				RejectMembership struct {
					ID, Status string
					DecidedAt  *string
				}
			}
			authzDecode(t, data, &out)
			if p := out.RejectMembership; p.ID != id || p.Status != "REJECTED" || p.DecidedAt == nil {
				t.Fatalf("rejectMembership = %+v", p)
			}
			if got, _ := e.proposal(t, id); got.Status != "REJECTED" {
				t.Errorf("follow-up read: %+v", got)
			}
			e.expectAudit(t, e.ctl.ID, id, "membership.reject", who, nil)
		},
		unchanged: func(t *testing.T) {
			if got, _ := e.proposal(t, id); got.Status != "PENDING" {
				t.Errorf("refused rejectMembership changed the proposal: %+v", got)
			}
		},
	}
}

func azOpAddEmailDomain(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		dom := e.uniq("authz-domain-") + ".org.uk"
		vars := map[string]any{"o": o.ID, "d": dom}
		hasDomain := func(t *testing.T) bool {
			return slices.ContainsFunc(e.orgState(t, o.ID).Domains, func(d struct{ ID, Domain string }) bool { return d.Domain == dom })
		}
		return authzCall{
			query:   `mutation($o: ID!, $d: String!) { addEmailDomain(organisationId: $o, domain: $d) { id organisationId domain includeSubdomains } }`,
			vars:    vars,
			missing: authzWith(vars, "o", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					AddEmailDomain struct {
						ID, OrganisationID, Domain string
						IncludeSubdomains          bool
					}
				}
				authzDecode(t, data, &out)
				d := out.AddEmailDomain
				if d.OrganisationID != o.ID || d.Domain != dom || d.IncludeSubdomains {
					t.Fatalf("addEmailDomain = %+v", d)
				}
				if !hasDomain(t) {
					t.Errorf("follow-up read: %s has no domain %s", o.Name, dom)
				}
				e.expectAudit(t, e.ctl.ID, o.ID, "domain.add", who, func(en authzAuditEntry) bool { return en.Details["domainId"] == d.ID })
			},
			unchanged: func(t *testing.T) {
				if hasDomain(t) {
					t.Errorf("refused addEmailDomain added %s to %s", dom, o.Name)
				}
			},
		}
	}
}

func azOpRemoveEmailDomain(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		id, dom := e.newDomain(t, o.ID)
		vars := map[string]any{"id": id}
		hasDomain := func(t *testing.T) bool {
			return slices.ContainsFunc(e.orgState(t, o.ID).Domains, func(d struct{ ID, Domain string }) bool { return d.ID == id })
		}
		return authzCall{
			query:   `mutation($id: ID!) { removeEmailDomain(domainId: $id) { id domains { id domain } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					RemoveEmailDomain struct {
						ID      string
						Domains []struct{ ID, Domain string }
					}
				}
				authzDecode(t, data, &out)
				got := out.RemoveEmailDomain
				if got.ID != o.ID || slices.ContainsFunc(got.Domains, func(d struct{ ID, Domain string }) bool { return d.ID == id }) {
					t.Fatalf("removeEmailDomain = %+v, want %s without %s", got, o.Name, dom)
				}
				if hasDomain(t) {
					t.Errorf("follow-up read: %s still has %s", o.Name, dom)
				}
				e.expectAudit(t, e.ctl.ID, o.ID, "domain.remove", who, func(en authzAuditEntry) bool { return en.Details["domainId"] == id })
			},
			unchanged: func(t *testing.T) {
				if !hasDomain(t) {
					t.Errorf("refused removeEmailDomain removed %s from %s", dom, o.Name)
				}
			},
		}
	}
}

func azOpCreateCourse(t *testing.T, e *authzEnv, who string) authzCall {
	lmsID := e.uniq("AUTHZ-COURSE-")
	vars := map[string]any{"p": e.ctl.ID, "in": map[string]any{"lmsCourseId": lmsID, "title": "Authorisation matrix course"}}
	hasCourse := func(t *testing.T) bool {
		return slices.ContainsFunc(e.programmeState(t, e.ctl.ID).Courses, func(c struct{ ID, LmsCourseID string }) bool { return c.LmsCourseID == lmsID })
	}
	return authzCall{
		query:   `mutation($p: ID!, $in: CourseInput!) { createCourse(programmeId: $p, input: $in) { id programmeId lmsCourseId title } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				CreateCourse struct{ ID, ProgrammeID, LmsCourseID, Title string }
			}
			authzDecode(t, data, &out)
			c := out.CreateCourse
			if c.ProgrammeID != e.ctl.ID || c.LmsCourseID != lmsID || c.Title != "Authorisation matrix course" {
				t.Fatalf("createCourse = %+v", c)
			}
			if !hasCourse(t) {
				t.Errorf("follow-up read: programme.courses lack %s", lmsID)
			}
			e.expectAudit(t, e.ctl.ID, c.ID, "course.create", who, nil)
		},
		unchanged: func(t *testing.T) {
			if hasCourse(t) {
				t.Errorf("refused createCourse created %s", lmsID)
			}
		},
	}
}

func azOpCreateAccessGroup(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		name := e.uniq("Authz group ")
		gdpr := e.course(t, "CTL-GDPR-101")
		vars := map[string]any{"o": o.ID, "in": map[string]any{"name": name, "courseIds": []string{gdpr}}}
		group := func(t *testing.T) (string, []string, bool) {
			for _, g := range e.orgState(t, o.ID).AccessGroups {
				if g.Name == name {
					return g.ID, authzIDs(g.Courses, func(c struct{ ID string }) string { return c.ID }), true
				}
			}
			return "", nil, false
		}
		return authzCall{
			query:   `mutation($o: ID!, $in: AccessGroupInput!) { createAccessGroup(organisationId: $o, input: $in) { id organisationId name isDefault courses { id } } }`,
			vars:    vars,
			missing: authzWith(vars, "o", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					CreateAccessGroup struct {
						ID, OrganisationID, Name string
						IsDefault                bool
						Courses                  []struct{ ID string }
					}
				}
				authzDecode(t, data, &out)
				g := out.CreateAccessGroup
				if g.OrganisationID != o.ID || g.Name != name || g.IsDefault || len(g.Courses) != 1 || g.Courses[0].ID != gdpr {
					t.Fatalf("createAccessGroup = %+v", g)
				}
				if id, courses, ok := group(t); !ok || id != g.ID || !slices.Equal(courses, []string{gdpr}) {
					t.Errorf("follow-up read: group %q of %s: %v %v %v", name, o.Name, ok, id, courses)
				}
				e.expectAudit(t, e.ctl.ID, g.ID, "access_group.create", who, func(en authzAuditEntry) bool { return en.Details["organisationId"] == o.ID })
			},
			unchanged: func(t *testing.T) {
				if _, _, ok := group(t); ok {
					t.Errorf("refused createAccessGroup created %q in %s", name, o.Name)
				}
			},
		}
	}
}

func azOpSetAccessGroupCourses(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		gdpr, infosec, edi := e.course(t, "CTL-GDPR-101"), e.course(t, "CTL-INFOSEC-101"), e.course(t, "CTL-EDI-101")
		gid := e.newGroup(t, o.ID, gdpr)
		want := []string{infosec, edi}
		slices.Sort(want)
		vars := map[string]any{"id": gid, "c": []string{infosec, edi}}
		return authzCall{
			query:   `mutation($id: ID!, $c: [ID!]!) { setAccessGroupCourses(accessGroupId: $id, courseIds: $c) { id organisationId courses { id } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					SetAccessGroupCourses struct {
						ID, OrganisationID string
						Courses            []struct{ ID string }
					}
				}
				authzDecode(t, data, &out)
				g := out.SetAccessGroupCourses
				got := authzIDs(g.Courses, func(c struct{ ID string }) string { return c.ID })
				slices.Sort(got)
				if g.ID != gid || g.OrganisationID != o.ID || !slices.Equal(got, want) {
					t.Fatalf("setAccessGroupCourses = %+v, want courses %v", g, want)
				}
				if courses, _ := e.orgState(t, o.ID).groupCourses(gid); !slices.Equal(courses, want) {
					t.Errorf("follow-up read: courses %v, want %v", courses, want)
				}
				e.expectAudit(t, e.ctl.ID, gid, "access_group.set_courses", who, nil)
			},
			unchanged: func(t *testing.T) {
				if courses, _ := e.orgState(t, o.ID).groupCourses(gid); !slices.Equal(courses, []string{gdpr}) {
					t.Errorf("refused setAccessGroupCourses changed the courses to %v", courses)
				}
			},
		}
	}
}

func azOpCreatePolicy(t *testing.T, e *authzEnv, who string) authzCall {
	name := e.uniq("Authz policy ")
	vars := map[string]any{"p": e.ctl.ID, "in": map[string]any{"name": name, "type": "OTHER", "audience": "AUTHENTICATED", "compulsory": false}}
	policyID := func(t *testing.T) string {
		for _, p := range e.programmeState(t, e.ctl.ID).Policies {
			if p.Name == name {
				return p.ID
			}
		}
		return ""
	}
	return authzCall{
		query:   `mutation($p: ID!, $in: PolicyInput!) { createPolicy(programmeId: $p, input: $in) { id programmeId name type audience compulsory } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				CreatePolicy struct {
					ID, ProgrammeID, Name, Type, Audience string
					Compulsory                            bool
				}
			}
			authzDecode(t, data, &out)
			p := out.CreatePolicy
			if p.ProgrammeID != e.ctl.ID || p.Name != name || p.Type != "OTHER" || p.Audience != "AUTHENTICATED" || p.Compulsory {
				t.Fatalf("createPolicy = %+v", p)
			}
			if got := policyID(t); got != p.ID {
				t.Errorf("follow-up read: programme.policies has %q as %q, want %q", name, got, p.ID)
			}
			e.expectAudit(t, e.ctl.ID, p.ID, "policy.create", who, nil)
		},
		unchanged: func(t *testing.T) {
			if id := policyID(t); id != "" {
				t.Errorf("refused createPolicy created %q", name)
			}
		},
	}
}

func azOpPublishPolicyVersion(t *testing.T, e *authzEnv, who string) authzCall {
	pid := e.newPolicy(t)
	vars := map[string]any{"id": pid, "in": map[string]any{"label": "v1", "summary": "matrix", "content": "Authorisation matrix policy text.", "activate": true}}
	state := func(t *testing.T) (current string, versions int) {
		for _, p := range e.programmeState(t, e.ctl.ID).Policies {
			if p.ID == pid {
				if p.CurrentVersion != nil {
					current = p.CurrentVersion.ID
				}
				return current, len(p.Versions)
			}
		}
		t.Fatalf("policy %s vanished", pid)
		return "", 0
	}
	return authzCall{
		query:   `mutation($id: ID!, $in: PolicyVersionInput!) { publishPolicyVersion(policyId: $id, input: $in) { id policyId label status content } }`,
		vars:    vars,
		missing: authzWith(vars, "id", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				PublishPolicyVersion struct{ ID, PolicyID, Label, Status, Content string }
			}
			authzDecode(t, data, &out)
			v := out.PublishPolicyVersion
			if v.PolicyID != pid || v.Label != "v1" || v.Status != "ACTIVE" {
				t.Fatalf("publishPolicyVersion = %+v", v)
			}
			if cur, n := state(t); cur != v.ID || n != 1 {
				t.Errorf("follow-up read: current version %q of %d, want %q", cur, n, v.ID)
			}
			e.expectAudit(t, e.ctl.ID, v.ID, "policy.version.publish", who, func(en authzAuditEntry) bool { return en.Details["policyId"] == pid })
		},
		unchanged: func(t *testing.T) {
			if cur, n := state(t); cur != "" || n != 0 {
				t.Errorf("refused publishPolicyVersion published: current %q, %d versions", cur, n)
			}
		},
	}
}

func azOpGrantRole(role domain.Role, target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		sub := e.uniq("authz-grantee-")
		in := map[string]any{"issuer": e.api.Issuer.URL(), "subject": sub, "role": string(role), "programmeId": e.ctl.ID}
		var org string
		switch {
		case target != "":
			org = e.org(target).ID
			in["organisationId"] = org
		case role == domain.RoleProgrammeAdmin:
			in["governingBodyId"] = e.ctl.Bodies["Smarter Digital Services"].ID
		}
		vars := map[string]any{"in": in}
		missing := authzWith(in, "programmeId", uuid.NewString())
		if target != "" {
			missing = authzWith(in, "organisationId", uuid.NewString())
		}
		return authzCall{
			query:   `mutation($in: GrantRoleInput!) { grantRole(input: $in) { id role issuer subject programmeId organisationId governingBodyId } }`,
			vars:    vars,
			missing: map[string]any{"in": missing},
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					GrantRole struct {
						authzGrant
						Issuer string
					}
				}
				authzDecode(t, data, &out)
				g := out.GrantRole
				if g.Role != string(role) || g.Subject != sub || g.Issuer != e.api.Issuer.URL() || g.ProgrammeID != e.ctl.ID ||
					(org != "" && (g.OrganisationID == nil || *g.OrganisationID != org)) {
					t.Fatalf("grantRole = %+v", g)
				}
				if !slices.ContainsFunc(e.roleGrants(t, e.ctl.ID), func(x authzGrant) bool { return x.ID == g.ID }) {
					t.Errorf("follow-up read: roleGrants lack %s", g.ID)
				}
				if roles := e.viewerRoles(t, sub); len(roles) != 1 || roles[0].ID != g.ID {
					t.Errorf("the grantee's viewer.roles = %+v, want the new grant", roles)
				}
				e.expectAudit(t, e.ctl.ID, g.ID, "role.grant", who, func(en authzAuditEntry) bool { return en.Details["role"] == string(role) })
			},
			unchanged: func(t *testing.T) {
				if slices.ContainsFunc(e.roleGrants(t, e.ctl.ID), func(x authzGrant) bool { return x.Subject == sub }) {
					t.Errorf("refused grantRole granted %s", sub)
				}
				if roles := e.viewerRoles(t, sub); len(roles) != 0 {
					t.Errorf("refused grantRole: the grantee holds %+v", roles)
				}
			},
		}
	}
}

func azOpRevokeRole(role domain.Role, target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		sub := e.uniq("authz-revokee-")
		pid := e.ctl.ID
		var org *string
		switch target {
		case "":
		case "otherProgramme":
			pid = e.onc.ID
		default:
			o := e.org(target)
			org = &o.ID
		}
		g := e.api.Grant(sub, role, pid, org, nil)
		if who == azAuditor && pid == e.ctl.ID {
			// The premise of the auditor's FORBIDDEN: the grant is visible to them.
			r := e.api.Do(e.tokens[azAuditor], `query($p: ID!, $t: ID) { auditLog(programmeId: $p, targetId: $t) { edges { node { action targetId } } } }`,
				map[string]any{"p": pid, "t": g.ID})
			if !strings.Contains(string(r.Data), `"role.grant"`) {
				t.Fatalf("the auditor cannot see the grant in the audit log: %s %s", r.Data, authzErrs(r))
			}
		}
		vars := map[string]any{"id": g.ID}
		listed := func(t *testing.T) bool {
			return slices.ContainsFunc(e.roleGrants(t, pid), func(x authzGrant) bool { return x.ID == g.ID })
		}
		return authzCall{
			query:   `mutation($id: ID!) { revokeRole(grantId: $id) }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ RevokeRole bool }
				authzDecode(t, data, &out)
				if !out.RevokeRole {
					t.Fatalf("revokeRole = false")
				}
				if listed(t) {
					t.Errorf("follow-up read: roleGrants still list %s", g.ID)
				}
				if roles := e.viewerRoles(t, sub); len(roles) != 0 {
					t.Errorf("the revoked identity still holds %+v", roles)
				}
				e.expectAudit(t, pid, g.ID, "role.revoke", who, func(en authzAuditEntry) bool { return en.Details["role"] == string(role) })
			},
			unchanged: func(t *testing.T) {
				if !listed(t) {
					t.Errorf("refused revokeRole removed %s", g.ID)
				}
				if roles := e.viewerRoles(t, sub); len(roles) != 1 {
					t.Errorf("refused revokeRole: the grantee holds %+v", roles)
				}
			},
		}
	}
}

// ---------------------------------------------------------------------------
// Learners, identity providers and self-service (CTL-10, CTL-12).

func azOpLearner(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		id, orgID := e.learnerTarget(t, target, false)
		vars := map[string]any{"id": id}
		return authzCall{
			query:   `query($id: ID!) { learner(id: $id) { id email status organisation { id } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					Learner *struct {
						ID           string
						Email        *string
						Status       string
						Organisation struct{ ID string }
					}
				}
				authzDecode(t, data, &out)
				got := out.Learner
				if got == nil || got.ID != id || got.Organisation.ID != orgID || got.Status != "PENDING_ACCEPTANCE" {
					t.Fatalf("learner = %+v, want %s of organisation %s", got, id, orgID)
				}
				want := e.learner(t, id).Email
				if got.Email == nil || want == nil || *got.Email != *want || (target == "self" && *got.Email != azLearnerEmail) {
					t.Errorf("learner email %q, want %q", authzStr(got.Email), authzStr(want))
				}
			},
		}
	}
}

func azOpRetention(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		id, _ := e.learnerTarget(t, target, false)
		vars := map[string]any{"id": id}
		type statement struct {
			KeptUntil    *string
			Reason, Rule string
		}
		return authzCall{
			query:   `query($id: ID!) { retention(learnerId: $id) { keptUntil reason rule } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ Retention statement }
				authzDecode(t, data, &out)
				var want struct{ Learner struct{ Retention statement } }
				e.boot(t, `query($id: ID!) { learner(id: $id) { retention { keptUntil reason rule } } }`, vars, &want)
				if got := out.Retention; got.Rule == "" || got.Reason == "" || !reflect.DeepEqual(got, want.Learner.Retention) {
					t.Errorf("retention = %+v, want %+v (GEN-1)", got, want.Learner.Retention)
				}
			},
		}
	}
}

// azOpLearners lists Connect to Learn's learners, of one organisation when
// target is given.
func azOpLearners(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		vars := map[string]any{"p": e.ctl.ID, "first": 500}
		missing := authzWith(vars, "p", uuid.NewString())
		scope := ""
		if target != "" {
			scope = e.org(target).ID
			vars["o"] = scope
			missing = authzWith(vars, "o", uuid.NewString())
		} else if who == azOrgAdminMedway {
			scope = e.medway.ID // an organisation admin lists their own organisation's learners
		}
		var want []string
		switch scope {
		case "":
			want = []string{e.self, e.medwayLearner, e.kccLearner}
		case e.medway.ID:
			want = []string{e.self, e.medwayLearner}
		default:
			want = []string{e.kccLearner}
		}
		return authzCall{
			query: `query($p: ID!, $o: ID, $first: Int) { learners(programmeId: $p, organisationId: $o, first: $first) {
				edges { node { id organisation { id } } } pageInfo { hasNextPage } } }`,
			vars:    vars,
			missing: missing,
			ok: func(t *testing.T, data json.RawMessage) {
				type node struct {
					ID           string
					Organisation struct{ ID string }
				}
				var out struct {
					Learners struct {
						Edges    []struct{ Node node }
						PageInfo struct{ HasNextPage bool }
					}
				}
				authzDecode(t, data, &out)
				if out.Learners.PageInfo.HasNextPage {
					t.Fatalf("more than one page of learners: raise first")
				}
				nodes := authzMap(out.Learners.Edges, func(ed struct{ Node node }) node { return ed.Node })
				ids := authzMap(nodes, func(n node) string { return n.ID })
				for _, id := range want {
					if !slices.Contains(ids, id) {
						t.Errorf("learners lack %s", id)
					}
				}
				for _, n := range nodes {
					if scope != "" && n.Organisation.ID != scope {
						t.Errorf("learners of %s list %s of organisation %s (CTL-10)", scope, n.ID, n.Organisation.ID)
					}
				}
			},
		}
	}
}

func azOpIdentityProviders(t *testing.T, e *authzEnv, who string) authzCall {
	vars := map[string]any{"p": e.ctl.ID}
	return authzCall{
		query:   `query($p: ID!) { identityProviders(programmeId: $p) { ` + authzProviderFields + ` } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct{ IdentityProviders []authzProvider }
			authzDecode(t, data, &out)
			ids := authzMap(out.IdentityProviders, func(p authzProvider) string { return p.ID })
			for _, p := range out.IdentityProviders {
				if p.ProgrammeID != e.ctl.ID || p.HasClientSecret {
					t.Errorf("identityProviders of Connect to Learn list %+v", p)
				}
			}
			switch who {
			case azBootstrap, azCTLAdmin: // programme admins see every provider of the programme
				for _, id := range []string{e.medwayProvider, e.kccProvider, e.ctlProvider} {
					if !slices.Contains(ids, id) {
						t.Errorf("identityProviders %v lack %s", ids, id)
					}
				}
			case azOrgAdminMedway: // their own organisation's only
				if !slices.Contains(ids, e.medwayProvider) {
					t.Errorf("identityProviders %v lack Medway's %s", ids, e.medwayProvider)
				}
				for _, p := range out.IdentityProviders {
					if p.OrganisationID == nil || *p.OrganisationID != e.medway.ID {
						t.Errorf("an admin of Medway Council sees the provider %+v", p)
					}
				}
			default: // auditor, LMS: none
				if len(ids) != 0 {
					t.Errorf("%s sees identity providers %+v", who, out.IdentityProviders)
				}
			}
		},
	}
}

// azOpRegisterIdentityProvider registers the provider of the target
// organisation or (target "") the programme's own provider.
func azOpRegisterIdentityProvider(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		var orgID string
		if target != "" {
			orgID = e.org(target).ID
			// One provider per organisation. Medway's stays for the learner,
			// who signs in with it (and may not register one anyway).
			if !(orgID == e.medway.ID && who == azLearnerMedway) {
				e.freeProvider(t, orgID)
			}
		}
		issuer, clientID := e.uniq(azFakeIssuerStart), e.uniq("authz-client-")
		in := map[string]any{"issuer": issuer, "clientId": clientID, "scopes": []string{"email", "profile"}}
		query := `mutation($o: ID!, $in: IdentityProviderInput!) { registerIdentityProvider(organisationId: $o, input: $in) { ` + authzProviderFields + ` } }`
		vars := map[string]any{"o": orgID, "in": in}
		missing := authzWith(vars, "o", uuid.NewString())
		forTarget := orgID
		if target == "" {
			query = `mutation($p: ID!, $in: IdentityProviderInput!) { registerProgrammeIdentityProvider(programmeId: $p, input: $in) { ` + authzProviderFields + ` } }`
			vars = map[string]any{"p": e.ctl.ID, "in": in}
			missing = authzWith(vars, "p", uuid.NewString())
			forTarget = e.ctl.ID
		}
		registered := func(t *testing.T) (authzProvider, bool) {
			for _, p := range e.providers(t) {
				if p.Issuer == issuer {
					return p, true
				}
			}
			return authzProvider{}, false
		}
		return authzCall{
			query:   query,
			vars:    vars,
			missing: missing,
			ok: func(t *testing.T, data json.RawMessage) {
				var out map[string]authzProvider
				authzDecode(t, data, &out)
				var p authzProvider
				for _, v := range out {
					p = v
				}
				if p.ProgrammeID != e.ctl.ID || p.Issuer != issuer || p.ClientID != clientID || p.Audience != clientID ||
					p.EmailTrust != "VERIFIED_CLAIM" || p.HasClientSecret || (orgID == "") != (p.OrganisationID == nil) ||
					(orgID != "" && *p.OrganisationID != orgID) {
					t.Fatalf("registered provider = %+v, want %s for %s", p, issuer, forTarget)
				}
				if got, ok := registered(t); !ok || got.ID != p.ID {
					t.Errorf("follow-up read: identityProviders have %+v (%v), want %s", got, ok, p.ID)
				}
				e.expectAudit(t, e.ctl.ID, p.ID, "identity_provider.register", who, func(en authzAuditEntry) bool {
					return en.Details["for"] == forTarget && en.Details["issuer"] == issuer
				})
			},
			unchanged: func(t *testing.T) {
				if p, ok := registered(t); ok {
					t.Errorf("refused registration registered %+v", p)
				}
			},
		}
	}
}

func (e *authzEnv) emailDomain(orgID string) string {
	if orgID == e.kcc.ID {
		return azOtherOrgDomain
	}
	return azLearnerDomain
}

func azOpCreateLearner(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		email := e.uniq("authz.create.") + "@" + e.emailDomain(o.ID)
		vars := map[string]any{"o": o.ID, "in": map[string]any{"email": email, "givenName": "Matrix", "familyName": "Created"}}
		return authzCall{
			query:   `mutation($o: ID!, $in: LearnerInput!) { createLearner(organisationId: $o, input: $in) { id email givenName status organisation { id } } }`,
			vars:    vars,
			missing: authzWith(vars, "o", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					CreateLearner struct {
						ID, Status       string
						Email, GivenName *string
						Organisation     struct{ ID string }
					}
				}
				authzDecode(t, data, &out)
				l := out.CreateLearner
				if authzStr(l.Email) != email || authzStr(l.GivenName) != "Matrix" || l.Organisation.ID != o.ID || l.Status != "PENDING_ACCEPTANCE" {
					t.Fatalf("createLearner = %+v", l)
				}
				if got := e.learner(t, l.ID); authzStr(got.Email) != email || got.Organisation.ID != o.ID {
					t.Errorf("follow-up read: %+v", got)
				}
				e.expectAudit(t, e.ctl.ID, l.ID, "learner.create", who, func(en authzAuditEntry) bool { return en.Details["organisationId"] == o.ID })
			},
			unchanged: func(t *testing.T) {
				if ls := e.learnersByEmail(t, email); len(ls) != 0 {
					t.Errorf("refused createLearner created %+v", ls)
				}
			},
		}
	}
}

func azOpImportLearners(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		emails := []string{e.uniq("authz.import.") + "@" + e.emailDomain(o.ID), e.uniq("authz.import.") + "@" + e.emailDomain(o.ID)}
		rows := authzMap(emails, func(em string) any {
			return map[string]any{"email": em, "givenName": "Matrix", "familyName": "Imported"}
		})
		vars := map[string]any{"o": o.ID, "rows": rows}
		return authzCall{
			query: `mutation($o: ID!, $rows: [LearnerInput!]!) { importLearners(organisationId: $o, rows: $rows, dryRun: false) {
				dryRun atomic total created failed lines { row code learnerId } } }`,
			vars:    vars,
			missing: authzWith(vars, "o", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					ImportLearners struct {
						DryRun, Atomic         bool
						Total, Created, Failed int
						Lines                  []struct {
							Row       int
							Code      string
							LearnerID *string
						}
					}
				}
				authzDecode(t, data, &out)
				rep := out.ImportLearners
				if rep.DryRun || !rep.Atomic || rep.Total != 2 || rep.Created != 2 || rep.Failed != 0 || len(rep.Lines) != 2 {
					t.Fatalf("importLearners = %+v", rep)
				}
				for i, line := range rep.Lines {
					if line.Row != i+1 || line.Code != "CREATED" || line.LearnerID == nil {
						t.Fatalf("import line %+v", line)
					}
					if got := e.learner(t, *line.LearnerID); authzStr(got.Email) != emails[i] || got.Organisation.ID != o.ID {
						t.Errorf("follow-up read of row %d: %+v", line.Row, got)
					}
					e.expectAudit(t, e.ctl.ID, *line.LearnerID, "learner.import", who, nil)
				}
			},
			unchanged: func(t *testing.T) {
				for _, em := range emails {
					if ls := e.learnersByEmail(t, em); len(ls) != 0 {
						t.Errorf("refused importLearners created %+v", ls)
					}
				}
			},
		}
	}
}

func azOpUpdateLearner(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		id, orgID := e.learnerTarget(t, target, true)
		before := e.learner(t, id)
		name, reason := e.uniq("Corrected"), e.uniq("authorisation matrix correction ")
		vars := map[string]any{"id": id, "in": map[string]any{"givenName": name, "reason": reason}}
		return authzCall{
			query:   `mutation($id: ID!, $in: LearnerUpdateInput!) { updateLearner(learnerId: $id, input: $in) { id givenName organisation { id } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					UpdateLearner struct {
						ID           string
						GivenName    *string
						Organisation struct{ ID string }
					}
				}
				authzDecode(t, data, &out)
				if l := out.UpdateLearner; l.ID != id || authzStr(l.GivenName) != name || l.Organisation.ID != orgID {
					t.Fatalf("updateLearner = %+v, want givenName %q", l, name)
				}
				if got := e.learner(t, id); authzStr(got.GivenName) != name {
					t.Errorf("follow-up read: givenName %q, want %q", authzStr(got.GivenName), name)
				}
				e.expectAudit(t, e.ctl.ID, id, "learner.update", who, func(en authzAuditEntry) bool { return en.Reason == reason })
			},
			unchanged: func(t *testing.T) {
				if got := e.learner(t, id); authzStr(got.GivenName) != authzStr(before.GivenName) {
					t.Errorf("refused updateLearner changed givenName %q → %q", authzStr(before.GivenName), authzStr(got.GivenName))
				}
			},
		}
	}
}

func azOpAcceptPoliciesOnBehalf(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		id, _ := e.learnerTarget(t, target, true)
		v := e.newOptionalVersion(t)
		note := e.uniq("accepted on a paper form, ref ")
		vars := map[string]any{"id": id, "in": map[string]any{"policyVersionIds": []string{v}}, "note": note}
		return authzCall{
			query: `mutation($id: ID!, $in: AcceptPoliciesInput!, $note: String!) { acceptPoliciesOnBehalf(learnerId: $id, input: $in, note: $note) {
				id acceptances { policyVersion { id } decision givenBy note } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ AcceptPoliciesOnBehalf authzLearner }
				authzDecode(t, data, &out)
				want := authzAcceptance{Decision: "ACCEPTED", GivenBy: "ADMIN", Note: note}
				want.PolicyVersion.ID = v
				if got, _ := out.AcceptPoliciesOnBehalf.decision(v); out.AcceptPoliciesOnBehalf.ID != id || got != want {
					t.Fatalf("acceptPoliciesOnBehalf = %+v, want %+v (CTL-5)", out.AcceptPoliciesOnBehalf, want)
				}
				if got, _ := e.learner(t, id).decision(v); got != want {
					t.Errorf("follow-up read: %+v, want %+v", got, want)
				}
				e.expectAudit(t, e.ctl.ID, id, "policy.accept", who, func(en authzAuditEntry) bool {
					return en.Details["givenBy"] == "ADMIN" && en.Reason == note
				})
			},
			unchanged: func(t *testing.T) {
				if got, ok := e.learner(t, id).decision(v); ok {
					t.Errorf("refused acceptPoliciesOnBehalf recorded %+v", got)
				}
			},
		}
	}
}

// azOpAcceptPolicies is the learner's own decision on a fresh optional
// policy version: acceptPolicies, or declinePolicies when decline.
func azOpAcceptPolicies(decline bool) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		v := e.newOptionalVersion(t)
		query := `mutation($in: AcceptPoliciesInput!) { acceptPolicies(input: $in) { learner { ` + authzLearnerFields + ` } } }`
		vars := map[string]any{"in": map[string]any{"policyVersionIds": []string{v}}}
		want := authzAcceptance{Decision: "ACCEPTED", GivenBy: "SELF"}
		action := "policy.accept"
		if decline {
			query = `mutation($ids: [ID!]!) { declinePolicies(policyVersionIds: $ids) { learner { ` + authzLearnerFields + ` } } }`
			vars = map[string]any{"ids": []string{v}}
			want.Decision, action = "DECLINED", "policy.decline"
		}
		want.PolicyVersion.ID = v
		return authzCall{
			query: query,
			vars:  vars,
			ok: func(t *testing.T, data json.RawMessage) {
				var out map[string]struct{ Learner *authzLearner }
				authzDecode(t, data, &out)
				var l *authzLearner
				for _, viewer := range out {
					l = viewer.Learner
				}
				if l == nil || l.ID != e.self {
					t.Fatalf("%s: viewer.learner = %+v, want %s", action, l, e.self)
				}
				if got, _ := l.decision(v); got != want {
					t.Fatalf("%s recorded %+v, want %+v", action, got, want)
				}
				if got, _ := e.learner(t, e.self).decision(v); got != want {
					t.Errorf("follow-up read: %+v, want %+v", got, want)
				}
				e.expectAudit(t, e.ctl.ID, e.self, action, who, func(en authzAuditEntry) bool { return en.Details["givenBy"] == "SELF" })
			},
			unchanged: func(t *testing.T) {
				if got, ok := e.learner(t, e.self).decision(v); ok {
					t.Errorf("refused %s recorded %+v", action, got)
				}
			},
		}
	}
}

func azOpUpdateMyProfile(t *testing.T, e *authzEnv, who string) authzCall {
	before := e.learner(t, e.self)
	name := e.uniq("Matrixson")
	return authzCall{
		query: `mutation($in: ProfileInput!) { updateMyProfile(input: $in) { id email familyName } }`,
		vars:  map[string]any{"in": map[string]any{"familyName": name}},
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				UpdateMyProfile struct {
					ID                string
					Email, FamilyName *string
				}
			}
			authzDecode(t, data, &out)
			if l := out.UpdateMyProfile; l.ID != e.self || authzStr(l.FamilyName) != name || authzStr(l.Email) != azLearnerEmail {
				t.Fatalf("updateMyProfile = %+v, want familyName %q (ONC-9: the name only)", l, name)
			}
			if got := e.learner(t, e.self); authzStr(got.FamilyName) != name {
				t.Errorf("follow-up read: familyName %q, want %q", authzStr(got.FamilyName), name)
			}
			e.expectAudit(t, e.ctl.ID, e.self, "learner.profile.update", who, nil)
		},
		unchanged: func(t *testing.T) {
			if got := e.learner(t, e.self); authzStr(got.FamilyName) != authzStr(before.FamilyName) {
				t.Errorf("refused updateMyProfile changed familyName %q → %q", authzStr(before.FamilyName), authzStr(got.FamilyName))
			}
		},
	}
}
