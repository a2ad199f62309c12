package graph_test

// The authorisation matrix (CTL-10, CTL-12): every query and mutation of the
// schema, called over HTTP by every kind of caller, against what docs/admins.md and
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
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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
//     is a programme admin's only. updateIdentityProvider and
//     removeIdentityProvider follow the same rules for the provider they name
//     (@programme: a programme's own provider).
//   - Leaving (CTL-8, CTL-9, CTL-11, ONC-5, GEN-4). The operations that change a
//     learner (withdrawConsentOnBehalf, markLeaver, reinstateLearner) follow
//     updateLearner: a fresh learner per case, and for @self a fresh learner
//     signed in through Medway's provider who is then also the learnerMedway
//     caller; so do the self-service withdrawConsent and requestErasure.
//     personalDataExport is an admin's (the learner uses myData): FORBIDDEN for
//     the LMS and for the learner on their own record. auditLog@learner narrows
//     the log with learnerId.
//   - Data requests are visible to programme admins and to the admins of the
//     learner's organisation, to no one else (NOT_FOUND, the auditor and the LMS
//     included), and decided only by an admin of the learner's own organisation
//     (ONC-5): FORBIDDEN for programme admins and the bootstrap admin. The
//     @ownOrg / @otherOrg requests are of Connect to Learn (opened while the
//     programme needs the controller's approval), @otherProgramme is of
//     Onclick, opened by a withdrawal as its rules have it. dataRequests: the
//     auditor and the LMS see the programme but may not list them (FORBIDDEN),
//     one organisation's list follows that organisation's visibility and the
//     caller's right to its requests (NOT_FOUND otherwise).
//   - organisationReport follows the organisation's visibility (ONC-7);
//     retentionPreview is for programme admins and auditors, runRetentionSweep
//     for programme admins (FORBIDDEN for the others who see the programme).
//   - reconcileRoster follows the organisation's management: @ownOrg / @otherOrg
//     are dry runs, @ownOrgApplied applies a roster of every Medway learner but
//     one fresh learner, so only that learner is scheduled for removal.
//   - The LMS sync API (CTL-4, CTL-10, ONC-3, invariant 3): enrolments,
//     lifecycleEvents and recordLearningActivity are for the programme's LMS
//     and its programme admins; the auditor and an organisation admin see the
//     programme but may not sync it (FORBIDDEN). API keys (apiKeys,
//     issueApiKey, revokeApiKey) are programme admins' only: FORBIDDEN for
//     everyone else who sees the programme, the LMS included (an LMS cannot
//     mint or end keys). @otherProgramme targets Onclick: a West Sussex
//     learner, Onclick's feed, a key of Onclick. lms_test.go tests what the
//     operations do; an API key itself is tested there too (it acts as an
//     LMS grant of its programme).
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
updateIdentityProvider@ownOrg      UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
updateIdentityProvider@otherOrg    UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
updateIdentityProvider@programme   UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
removeIdentityProvider@ownOrg      UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
removeIdentityProvider@otherOrg    UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
removeIdentityProvider@programme   UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
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
auditLog@learner                   UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
myData                             UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  FORBIDDEN     FORBIDDEN  FORBIDDEN  FORBIDDEN       FORBIDDEN  OK
personalDataExport@self            UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  FORBIDDEN
personalDataExport@ownOrg          UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  NOT_FOUND
personalDataExport@otherOrg        UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  NOT_FOUND       NOT_FOUND  NOT_FOUND
retentionPreview                   UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
dataRequests                       UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  OK              NOT_FOUND  NOT_FOUND
dataRequests@ownOrg                UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
dataRequests@otherOrg              UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
dataRequests@otherProgramme        UNAUTHENTICATED  OK         NOT_FOUND  OK            NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
organisationReport@ownOrg          UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
organisationReport@otherOrg        UNAUTHENTICATED  OK         OK         NOT_FOUND     OK         NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
withdrawConsent                    UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  FORBIDDEN     FORBIDDEN  FORBIDDEN  FORBIDDEN       FORBIDDEN  OK
requestErasure                     UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  FORBIDDEN     FORBIDDEN  FORBIDDEN  FORBIDDEN       FORBIDDEN  OK
withdrawConsentOnBehalf@self       UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  FORBIDDEN
withdrawConsentOnBehalf@ownOrg     UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  NOT_FOUND
withdrawConsentOnBehalf@otherOrg   UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  NOT_FOUND       NOT_FOUND  NOT_FOUND
approveDataRequest@ownOrg          UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  NOT_FOUND     NOT_FOUND  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
approveDataRequest@otherOrg        UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  NOT_FOUND     NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
approveDataRequest@otherProgramme  UNAUTHENTICATED  FORBIDDEN  NOT_FOUND  FORBIDDEN     NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
rejectDataRequest@ownOrg           UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  NOT_FOUND     NOT_FOUND  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
rejectDataRequest@otherOrg         UNAUTHENTICATED  FORBIDDEN  FORBIDDEN  NOT_FOUND     NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
rejectDataRequest@otherProgramme   UNAUTHENTICATED  FORBIDDEN  NOT_FOUND  FORBIDDEN     NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
markLeaver@self                    UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  FORBIDDEN
markLeaver@ownOrg                  UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  NOT_FOUND
markLeaver@otherOrg                UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  NOT_FOUND       NOT_FOUND  NOT_FOUND
reinstateLearner@self              UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  FORBIDDEN
reinstateLearner@ownOrg            UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  OK              NOT_FOUND  NOT_FOUND
reinstateLearner@otherOrg          UNAUTHENTICATED  OK         OK         NOT_FOUND     NOT_FOUND  FORBIDDEN  NOT_FOUND       NOT_FOUND  NOT_FOUND
reconcileRoster@ownOrg             UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
reconcileRoster@otherOrg           UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
reconcileRoster@ownOrgApplied      UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
runRetentionSweep                  UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
enrolments                         UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  OK         FORBIDDEN       NOT_FOUND  NOT_FOUND
enrolments@otherProgramme          UNAUTHENTICATED  OK         NOT_FOUND  OK            NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
lifecycleEvents                    UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  OK         FORBIDDEN       NOT_FOUND  NOT_FOUND
lifecycleEvents@otherProgramme     UNAUTHENTICATED  OK         NOT_FOUND  OK            NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
recordLearningActivity             UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  OK         FORBIDDEN       NOT_FOUND  NOT_FOUND
recordLearningActivity@otherProgramme UNAUTHENTICATED OK       NOT_FOUND  OK            NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
apiKeys                            UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
issueApiKey                        UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
revokeApiKey                       UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  FORBIDDEN  FORBIDDEN       NOT_FOUND  NOT_FOUND
revokeApiKey@otherProgramme        UNAUTHENTICATED  OK         NOT_FOUND  OK            NOT_FOUND  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
scimTokens@ownOrg                  UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
scimTokens@otherOrg                UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
issueScimToken@ownOrg              UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
issueScimToken@otherOrg            UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
revokeScimToken@ownOrg             UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  OK              NOT_FOUND  NOT_FOUND
revokeScimToken@otherOrg           UNAUTHENTICATED  OK         OK         NOT_FOUND     FORBIDDEN  NOT_FOUND  NOT_FOUND       NOT_FOUND  NOT_FOUND
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
	// medwayIdP signs in fresh learners of Medway (newSelf).
	medwayIdP *oidcissuer.Issuer
	// wscc is the Onclick programme's partner (West Sussex County Council).
	wscc domain.Organisation
	// Erasure requests awaiting the controller (ONC-5), opened at set-up and
	// never decided: of a Medway and a KCC learner of Connect to Learn, and of
	// a West Sussex learner of Onclick.
	medwayRequest, kccRequest, oncRequest string
}

// The learner's identity at Medway's provider (CTL-3: a verified work email).
const (
	azLearnerSubject  = "amy"
	azLearnerEmail    = "amy@medway.gov.uk"
	azMedwayClientID  = "medway-rollcall"
	azLearnerDomain   = "medway.gov.uk"
	azOtherOrgDomain  = "kent.gov.uk"
	azOnclickDomain   = "westsussex.gov.uk"
	azFakeIssuerStart = "http://127.0.0.1:9/authz-idp-" // registered, never signs anything
)

func newAuthzEnv(t *testing.T, d migrations.Dialect) *authzEnv {
	world := testkit.NewPartnership(t, d)
	api := world.API
	e := &authzEnv{
		api:      api,
		dialect:  d,
		ctl:      world.CTL,
		onc:      world.Onclick,
		tokens:   map[string]string{azAnonymous: ""},
		subjects: map[string]string{azBootstrap: testkit.BootstrapSubject},
		issuers:  map[string]string{},
		actorIDs: map[string]string{},
		held:     map[string][]string{},
		auditEnd: map[string]string{},
	}
	e.medway = e.ctl.Org(t, "Medway Council")
	e.kcc = e.ctl.Org(t, "Kent County Council")
	e.wscc = e.onc.Org(t, "West Sussex County Council")
	kentConnects := e.ctl.Body(t, "Kent Connects").ID
	wscc := e.onc.Body(t, "West Sussex County Council").ID

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
	medway := api.RegisterProvider(e.ctl.ID, e.medway.ID, testkit.ProviderInput{ClientID: azMedwayClientID})
	medwayIdP := medway.Issuer
	e.medwayIdP = medwayIdP
	e.medwayProvider = medway.ID
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
	e.medwayRequest, _ = e.newRequest(t, e.medway.ID)
	e.kccRequest, _ = e.newRequest(t, e.kcc.ID)
	e.oncRequest, _ = e.newRequest(t, e.wscc.ID)
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
	// NOT_FOUND refusal must be indistinguishable from its answer (docs/admins.md, "The API").
	missing map[string]any
	// ok checks the data of an allowed call, the follow-up read and the audit entry.
	ok func(t *testing.T, data json.RawMessage)
	// unchanged checks, after a refusal, that the object the call would have
	// created or changed is as it was.
	unchanged func(t *testing.T)
	// as, when set, is the caller instead of the actor's shared identity: a
	// fresh learner, for self-service cases that change the learner.
	as *authzSelf
}

type authzOp func(t *testing.T, e *authzEnv, who string) authzCall

func (e *authzEnv) run(t *testing.T, op authzOp, who, want string) {
	c := op(t, e, who) // the case's fixtures are written before the audit marks
	marks := map[string]string{e.ctl.ID: e.auditMark(t, e.ctl.ID), e.onc.ID: e.auditMark(t, e.onc.ID)}
	token := e.tokens[who]
	if c.as != nil {
		token = c.as.Token
	}

	r := e.api.Do(token, c.query, c.vars)
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
		m := e.api.Do(token, c.query, c.missing)
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
	e.expectAuditBy(t, programmeID, targetID, action, who, e.actorIDs[who], match)
}

// expectAuditBy is expectAudit for a caller known by its actor ID (a fresh learner).
func (e *authzEnv) expectAuditBy(t *testing.T, programmeID, targetID, action, who, actorID string, match func(authzAuditEntry) bool) {
	t.Helper()
	es, _ := e.auditPages(t, programmeID, &targetID, "")
	for _, en := range es {
		if en.Action == action && en.ActorID == actorID && (match == nil || match(en)) {
			return
		}
	}
	t.Errorf("no %q audit entry by %s (%s) on %s; entries on the target: %+v", action, who, actorID, targetID, es)
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
	del := func(t *testing.T) {
		ps, err := e.api.Store.ProvidersFor(ctx, e.ctl.ID, orgID)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.OrganisationID != nil && *p.OrganisationID == orgID {
				if err := e.api.Store.DeleteProvider(ctx, p.ID); err != nil {
					t.Fatalf("free the provider of %s: %v", orgID, err)
				}
			}
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
	ID                          string
	Email                       *string
	GivenName, FamilyName       *string
	Status                      string
	RemovalReason, RemovalDueAt *string
	Organisation                struct{ ID string }
	Acceptances                 []authzAcceptance
}

type authzAcceptance struct {
	PolicyVersion           struct{ ID string }
	Decision, GivenBy, Note string
}

const authzLearnerFields = `id email givenName familyName status removalReason removalDueAt organisation { id }
	acceptances { policyVersion { id } decision givenBy note }`

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
	return e.api.CreateLearner(orgID, map[string]any{"email": e.uniq("authz.fixture.") + "@" + e.emailDomain(orgID),
		"givenName": "Fixture", "familyName": "Learner"})
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
		ops["updateIdentityProvider@"+target] = azOpChangeIdentityProvider(target, false)
		ops["removeIdentityProvider@"+target] = azOpChangeIdentityProvider(target, true)
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
	ops["updateIdentityProvider@programme"] = azOpChangeIdentityProvider("", false)
	ops["removeIdentityProvider@programme"] = azOpChangeIdentityProvider("", true)
	ops["identityProviders"] = azOpIdentityProviders
	ops["registerProgrammeIdentityProvider"] = azOpRegisterIdentityProvider("")
	ops["acceptPolicies"] = azOpAcceptPolicies(false)
	ops["declinePolicies"] = azOpAcceptPolicies(true)
	ops["updateMyProfile"] = azOpUpdateMyProfile
	authzLeavingOperations(ops)
	authzLMSOperations(ops)
	authzScimOperations(ops) // authz_scim_test.go
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
				if who == azLMS {
					// CTL-10: the LMS reads no personal data of a learner
					// without access (this one awaits acceptance).
					if got.Email != nil {
						t.Errorf("the LMS read the email of a learner without access: %q", *got.Email)
					}
					return
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
	switch orgID {
	case e.kcc.ID:
		return azOtherOrgDomain
	case e.wscc.ID:
		return azOnclickDomain
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

// ---------------------------------------------------------------------------
// Leaving: exports, data requests, withdrawal, leavers, rosters, retention
// (CTL-6..CTL-11, ONC-5, ONC-7, ONC-10, GEN-4).

func authzLeavingOperations(ops map[string]authzOp) {
	ops["auditLog@learner"] = azOpAuditLogOfLearner
	ops["myData"] = azOpMyData
	ops["retentionPreview"] = azOpRetentionPreview
	ops["dataRequests"] = azOpDataRequests("")
	ops["withdrawConsent"] = azOpWithdrawConsent
	ops["requestErasure"] = azOpRequestErasure
	ops["reconcileRoster@ownOrgApplied"] = azOpReconcileRosterApplied
	ops["runRetentionSweep"] = azOpRunRetentionSweep
	for _, target := range []string{"self", "ownOrg", "otherOrg"} {
		ops["personalDataExport@"+target] = azOpPersonalDataExport(target)
		ops["withdrawConsentOnBehalf@"+target] = azOpWithdrawConsentOnBehalf(target)
		ops["markLeaver@"+target] = azOpMarkLeaver(target)
		ops["reinstateLearner@"+target] = azOpReinstateLearner(target)
	}
	for _, target := range []string{"ownOrg", "otherOrg"} {
		ops["organisationReport@"+target] = azOpOrganisationReport(target)
		ops["reconcileRoster@"+target] = azOpReconcileRosterDryRun(target)
	}
	for _, target := range []string{"ownOrg", "otherOrg", "otherProgramme"} {
		ops["dataRequests@"+target] = azOpDataRequests(target)
		ops["approveDataRequest@"+target] = azOpDecideDataRequest(target, true)
		ops["rejectDataRequest@"+target] = azOpDecideDataRequest(target, false)
	}
}

// authzSelf is a fresh learner of Medway Council, signed in through Medway's
// own provider: a stand-in for learnerMedway in cases that change the learner.
type authzSelf struct{ ID, Email, Token, ActorID string }

func (e *authzEnv) newSelf(t *testing.T) *authzSelf {
	t.Helper()
	sub := e.uniq("authz-self-")
	verified := true
	tok, err := e.medwayIdP.Mint(oidcissuer.Claims{Subject: sub, Audience: []string{azMedwayClientID},
		Email: sub + "@" + azLearnerDomain, EmailVerified: &verified})
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Viewer struct {
			ActorID     string
			Learner     *struct{ ID string }
			SignInError *string
		}
	}
	e.api.Do(tok, `{ viewer { actorId learner { id } signInError } }`, nil).Decode(t, &v)
	if v.Viewer.Learner == nil {
		t.Fatalf("a fresh learner's first request did not provision them: signInError %q", authzStr(v.Viewer.SignInError))
	}
	return &authzSelf{ID: v.Viewer.Learner.ID, Email: sub + "@" + azLearnerDomain, Token: tok, ActorID: v.Viewer.ActorID}
}

// callerID is the actor ID of who in a case, where as stands in for learnerMedway.
func (e *authzEnv) callerID(who string, as *authzSelf) string {
	if as != nil && who == azLearnerMedway {
		return as.ActorID
	}
	return e.actorIDs[who]
}

// changedLearner resolves the target of an operation that changes a learner
// to a fresh learner, so cases stay independent: one of the organisation for
// @ownOrg / @otherOrg; for @self one signed in through Medway's provider, who
// is then also the learnerMedway caller (as).
func (e *authzEnv) changedLearner(t *testing.T, target, who string) (id, orgID string, as *authzSelf) {
	t.Helper()
	if target == "self" {
		s := e.newSelf(t)
		if who == azLearnerMedway {
			as = s
		}
		return s.ID, e.medway.ID, as
	}
	id, orgID = e.learnerTarget(t, target, true)
	return id, orgID, nil
}

// requestOrg resolves a data request target to its organisation and programme.
func (e *authzEnv) requestOrg(target string) (orgID, programmeID string) {
	if target == "otherProgramme" {
		return e.wscc.ID, e.onc.ID
	}
	return e.org(target).ID, e.ctl.ID
}

type authzRequest struct {
	ID, ProgrammeID, OrganisationID, LearnerID string
	Kind, Origin, Status, Reason, RequestedBy  string
	DecisionNote                               string
	DecidedBy, DecidedAt, CompletedAt          *string
}

const authzRequestFields = `id programmeId organisationId learnerId kind origin status reason requestedBy decidedBy decidedAt decisionNote completedAt`

// requests lists a programme's data requests as the bootstrap admin.
func (e *authzEnv) requests(t *testing.T, programmeID string) []authzRequest {
	t.Helper()
	var all []authzRequest
	var after *string
	for {
		var out struct {
			DataRequests struct {
				Edges    []struct{ Node authzRequest }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		e.boot(t, `query($p: ID!, $a: String) { dataRequests(programmeId: $p, first: 500, after: $a) {
			edges { node { `+authzRequestFields+` } } pageInfo { hasNextPage endCursor } } }`,
			map[string]any{"p": programmeID, "a": after}, &out)
		for _, ed := range out.DataRequests.Edges {
			all = append(all, ed.Node)
		}
		if !out.DataRequests.PageInfo.HasNextPage {
			return all
		}
		after = out.DataRequests.PageInfo.EndCursor
	}
}

func (e *authzEnv) request(t *testing.T, programmeID, id string) authzRequest {
	t.Helper()
	for _, r := range e.requests(t, programmeID) {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("data request %s vanished", id)
	return authzRequest{}
}

func (e *authzEnv) setErasureNeedsApproval(t *testing.T, on bool) {
	t.Helper()
	var out struct{ UpdateProgrammeRules struct{ ID string } }
	e.boot(t, `mutation($p: ID!, $in: RuleSettingsInput!) { updateProgrammeRules(programmeId: $p, input: $in) { id } }`,
		map[string]any{"p": e.ctl.ID, "in": map[string]any{"erasureNeedsApproval": on, "reason": "authorisation matrix fixture"}}, &out)
}

// newRequest opens an erasure request awaiting the controller (ONC-5) for a
// fresh learner of the organisation, through the API: the bootstrap admin
// records the learner's withdrawal on their behalf. Onclick's rules need the
// controller's approval; Connect to Learn is switched to need it for the
// withdrawal and back (the request stays open).
func (e *authzEnv) newRequest(t *testing.T, orgID string) (requestID, learnerID string) {
	t.Helper()
	pid := e.ctl.ID
	if orgID == e.wscc.ID {
		pid = e.onc.ID
	} else {
		e.setErasureNeedsApproval(t, true)
		defer e.setErasureNeedsApproval(t, false)
	}
	learnerID = e.newLearner(t, orgID)
	var out struct{ WithdrawConsentOnBehalf struct{ Status string } }
	e.boot(t, `mutation($id: ID!, $r: String!) { withdrawConsentOnBehalf(learnerId: $id, reason: $r) { status } }`,
		map[string]any{"id": learnerID, "r": "authorisation matrix fixture: withdrawal by letter"}, &out)
	if out.WithdrawConsentOnBehalf.Status != "WITHDRAWN" {
		t.Fatalf("fixture withdrawal: status %s, want WITHDRAWN awaiting the controller", out.WithdrawConsentOnBehalf.Status)
	}
	for _, r := range e.requests(t, pid) {
		if r.LearnerID == learnerID && r.Status == "AWAITING_APPROVAL" {
			return r.ID, learnerID
		}
	}
	t.Fatalf("the withdrawal of %s opened no request awaiting approval (ONC-5)", learnerID)
	return "", ""
}

// markLeaverFixture marks a learner as a leaver, as the bootstrap admin.
func (e *authzEnv) markLeaverFixture(t *testing.T, id string) {
	t.Helper()
	var out struct{ MarkLeaver struct{ Status string } }
	e.boot(t, `mutation($id: ID!, $r: String!) { markLeaver(learnerId: $id, reason: $r) { status } }`,
		map[string]any{"id": id, "r": "authorisation matrix fixture"}, &out)
	if out.MarkLeaver.Status != "REMOVAL_SCHEDULED" {
		t.Fatalf("fixture leaver: status %s", out.MarkLeaver.Status)
	}
}

func authzTime(t *testing.T, s *string) time.Time {
	t.Helper()
	if s == nil {
		t.Fatalf("time is null")
	}
	v, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		t.Fatalf("time %q: %v", *s, err)
	}
	return v
}

type authzExport struct {
	LearnerID  string
	ExportedAt string
	Document   struct {
		Format  string
		Profile struct {
			ID     string
			Email  *string
			Status string
		}
		Organisation struct{ ID string }
		Programme    struct{ ID string }
		AuditEntries []struct{ Action string }
	}
}

const authzExportFields = `learnerId exportedAt document`

func (e *authzEnv) checkExport(t *testing.T, x authzExport, id, orgID string) {
	t.Helper()
	d := x.Document
	if x.LearnerID != id || d.Profile.ID != id || d.Organisation.ID != orgID || d.Programme.ID != e.ctl.ID || x.ExportedAt == "" {
		t.Fatalf("export = %+v, want learner %s of organisation %s", x, id, orgID)
	}
	want := e.learner(t, id).Email
	if d.Profile.Email == nil || want == nil || *d.Profile.Email != *want {
		t.Errorf("export email %q, want %q", authzStr(d.Profile.Email), authzStr(want))
	}
	if d.Format != "rollcall.personal-data/1" || len(d.AuditEntries) == 0 {
		t.Errorf("export format %q with %d audit entries about the learner", d.Format, len(d.AuditEntries))
	}
}

func azOpAuditLogOfLearner(t *testing.T, e *authzEnv, who string) authzCall {
	vars := map[string]any{"p": e.ctl.ID, "l": e.medwayLearner}
	return authzCall{
		query:   `query($p: ID!, $l: ID) { auditLog(programmeId: $p, learnerId: $l, first: 50) { edges { node { action targetType targetId } } } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				AuditLog struct {
					Edges []struct {
						Node struct{ Action, TargetType, TargetID string }
					}
				}
			}
			authzDecode(t, data, &out)
			created := false
			for _, ed := range out.AuditLog.Edges {
				if ed.Node.TargetID != e.medwayLearner || ed.Node.TargetType != "learner" {
					t.Errorf("learnerId filter not applied: %+v", ed.Node)
				}
				created = created || ed.Node.Action == "learner.create"
			}
			if !created {
				t.Errorf("the learner's audit trail has no learner.create entry: %+v", out.AuditLog.Edges)
			}
		},
	}
}

func azOpMyData(t *testing.T, e *authzEnv, who string) authzCall {
	return authzCall{
		query: `{ myData { ` + authzExportFields + ` } }`,
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct{ MyData authzExport }
			authzDecode(t, data, &out)
			e.checkExport(t, out.MyData, e.self, e.medway.ID)
			if authzStr(out.MyData.Document.Profile.Email) != azLearnerEmail {
				t.Errorf("myData email %q, want %q", authzStr(out.MyData.Document.Profile.Email), azLearnerEmail)
			}
			e.expectAudit(t, e.ctl.ID, e.self, "learner.export", who, nil)
		},
	}
}

func azOpPersonalDataExport(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		id, orgID := e.learnerTarget(t, target, false)
		vars := map[string]any{"id": id}
		return authzCall{
			query:   `query($id: ID!) { personalDataExport(learnerId: $id) { ` + authzExportFields + ` } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ PersonalDataExport authzExport }
				authzDecode(t, data, &out)
				e.checkExport(t, out.PersonalDataExport, id, orgID)
				// ONC-10: producing it is itself recorded.
				e.expectAudit(t, e.ctl.ID, id, "learner.export", who, nil)
			},
		}
	}
}

func azOpRetentionPreview(t *testing.T, e *authzEnv, who string) authzCall {
	var p struct {
		Programme struct {
			Settings struct{ ContractEndsAt *string }
		}
	}
	e.boot(t, `query($id: ID!) { programme(id: $id) { settings { contractEndsAt } } }`, map[string]any{"id": e.ctl.ID}, &p)
	end := authzTime(t, p.Programme.Settings.ContractEndsAt) // CTL-6
	vars := map[string]any{"p": e.ctl.ID, "asOf": end.Format(time.RFC3339)}
	return authzCall{
		query:   `query($p: ID!, $asOf: Time!) { retentionPreview(programmeId: $p, asOf: $asOf) { learnerId organisationId reason action dueAt } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			type removal struct{ LearnerID, OrganisationID, Reason, Action, DueAt string }
			var out struct{ RetentionPreview []removal }
			authzDecode(t, data, &out)
			byID := map[string]removal{}
			for _, r := range out.RetentionPreview {
				byID[r.LearnerID] = r
				if r.Reason != "CONTRACT_ENDED" || r.Action != "ERASE" {
					t.Errorf("at the contract end every learner is erased (CTL-6), got %+v", r)
				}
			}
			for id, org := range map[string]string{e.self: e.medway.ID, e.medwayLearner: e.medway.ID, e.kccLearner: e.kcc.ID} {
				r, ok := byID[id]
				if !ok || r.OrganisationID != org || !authzTime(t, &r.DueAt).Equal(end) {
					t.Errorf("retentionPreview lacks %s of %s due %s: %+v (%v)", id, org, end, r, ok)
				}
			}
		},
	}
}

// azOpDataRequests lists Connect to Learn's data requests (of one
// organisation when target is ownOrg or otherOrg), or Onclick's.
func azOpDataRequests(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		pid, scope := e.ctl.ID, ""
		vars := map[string]any{"p": pid}
		missing := authzWith(vars, "p", uuid.NewString())
		var want, hidden []string
		switch target {
		case "":
			want = []string{e.medwayRequest, e.kccRequest}
			if who == azOrgAdminMedway { // an organisation admin lists their own organisation's
				scope, want, hidden = e.medway.ID, []string{e.medwayRequest}, []string{e.kccRequest}
			}
		case "otherProgramme":
			pid = e.onc.ID
			vars = map[string]any{"p": pid}
			missing = authzWith(vars, "p", uuid.NewString())
			want = []string{e.oncRequest}
		case "ownOrg":
			scope, want, hidden = e.medway.ID, []string{e.medwayRequest}, []string{e.kccRequest}
		default:
			scope, want, hidden = e.kcc.ID, []string{e.kccRequest}, []string{e.medwayRequest}
		}
		if target == "ownOrg" || target == "otherOrg" {
			vars["o"] = scope
			missing = authzWith(vars, "o", uuid.NewString())
		}
		return authzCall{
			query: `query($p: ID!, $o: ID) { dataRequests(programmeId: $p, organisationId: $o, first: 500) {
				edges { node { ` + authzRequestFields + ` } } pageInfo { hasNextPage } } }`,
			vars:    vars,
			missing: missing,
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					DataRequests struct {
						Edges    []struct{ Node authzRequest }
						PageInfo struct{ HasNextPage bool }
					}
				}
				authzDecode(t, data, &out)
				if out.DataRequests.PageInfo.HasNextPage {
					t.Fatalf("more than one page of data requests")
				}
				var ids []string
				for _, ed := range out.DataRequests.Edges {
					r := ed.Node
					ids = append(ids, r.ID)
					if r.ProgrammeID != pid || (scope != "" && r.OrganisationID != scope) {
						t.Errorf("data requests of %s/%s list %+v (CTL-10)", pid, scope, r)
					}
				}
				for _, id := range want {
					if !slices.Contains(ids, id) {
						t.Errorf("dataRequests lack %s", id)
					}
				}
				for _, id := range hidden {
					if slices.Contains(ids, id) {
						t.Errorf("dataRequests list %s of another organisation", id)
					}
				}
			},
		}
	}
}

func azOpOrganisationReport(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		vars := map[string]any{"o": o.ID}
		return authzCall{
			query: `query($o: ID!) { organisationReport(organisationId: $o) { organisationId generatedAt learnersEver
				byStatus { key count } byAccessGroup { key count } policyDecisions { key count } activity { key count } } }`,
			vars:    vars,
			missing: authzWith(vars, "o", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				type entry struct {
					Key   string
					Count int
				}
				var out struct {
					OrganisationReport struct {
						OrganisationID string
						LearnersEver   int
						ByStatus       []entry
						ByAccessGroup  []entry
					}
				}
				authzDecode(t, data, &out)
				rep := out.OrganisationReport
				total := 0
				for _, s := range rep.ByStatus {
					total += s.Count
				}
				if rep.OrganisationID != o.ID || rep.LearnersEver < 1 || rep.LearnersEver != total || len(rep.ByAccessGroup) == 0 {
					t.Fatalf("organisationReport = %+v", rep)
				}
				// ONC-7: aggregates only, no learner named or identified.
				learner := e.medwayLearner
				if o.ID == e.kcc.ID {
					learner = e.kccLearner
				}
				if s := string(data); strings.Contains(s, "@") || strings.Contains(s, learner) || strings.Contains(s, "Fixture") {
					t.Errorf("the report identifies learners: %s", s)
				}
			},
		}
	}
}

// azOpWithdrawConsent: the learner's own withdrawal (CTL-8, ONC-8); Connect to
// Learn erases at once (no withdrawal delay).
func azOpWithdrawConsent(t *testing.T, e *authzEnv, who string) authzCall {
	var as *authzSelf
	if who == azLearnerMedway {
		as = e.newSelf(t)
	}
	reason := e.uniq("authorisation matrix withdrawal ")
	return authzCall{
		query: `mutation($r: String) { withdrawConsent(reason: $r) { actorId accessAllowed learner { id status } } }`,
		vars:  map[string]any{"r": reason},
		as:    as,
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				WithdrawConsent struct {
					ActorID       string
					AccessAllowed bool
					Learner       *struct{ ID, Status string }
				}
			}
			authzDecode(t, data, &out)
			v := out.WithdrawConsent
			if got := e.learner(t, as.ID); got.Status != "ERASED" || got.Email != nil {
				t.Errorf("follow-up read: %+v, want ERASED (CTL-8: no withdrawal delay)", got)
			}
			// The viewer answered is the learner who withdrew, or none: withdrawing
			// must not sign the person up again (a new record with their email).
			if again := e.learnersByEmail(t, as.Email); len(again) != 0 {
				t.Errorf("withdrawConsent provisioned the erased learner again: %+v", again)
			}
			if v.ActorID != as.ActorID || v.AccessAllowed || (v.Learner != nil && (v.Learner.ID != as.ID || v.Learner.Status != "ERASED")) {
				t.Fatalf("withdrawConsent = %+v (learner %+v), want the learner's (%s) access ended", v, authzPtr(v.Learner), as.ID)
			}
			// GEN-2: the learner's own words stay out of the append-only log.
			e.expectAuditBy(t, e.ctl.ID, as.ID, "learner.withdraw", who, as.ActorID, func(en authzAuditEntry) bool { return en.Reason == "" })
			e.expectAuditBy(t, e.ctl.ID, as.ID, "learner.erase", who, as.ActorID, nil)
		},
	}
}

// azOpRequestErasure: the learner's own request (CTL-11); Connect to Learn
// needs no controller approval, so it is carried out at once.
func azOpRequestErasure(t *testing.T, e *authzEnv, who string) authzCall {
	var as *authzSelf
	if who == azLearnerMedway {
		as = e.newSelf(t)
	}
	reason := e.uniq("authorisation matrix erasure request ")
	return authzCall{
		query: `mutation($r: String) { requestErasure(reason: $r) { ` + authzRequestFields + ` } }`,
		vars:  map[string]any{"r": reason},
		as:    as,
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct{ RequestErasure authzRequest }
			authzDecode(t, data, &out)
			r := out.RequestErasure
			if r.LearnerID != as.ID || r.ProgrammeID != e.ctl.ID || r.OrganisationID != e.medway.ID || r.Kind != "ERASURE" ||
				r.Origin != "ERASURE_REQUESTED" || r.Status != "COMPLETED" || r.RequestedBy != as.ActorID {
				t.Fatalf("requestErasure = %+v", r)
			}
			if got := e.request(t, e.ctl.ID, r.ID); got.Status != "COMPLETED" || got.Reason != "" {
				t.Errorf("follow-up read: %+v, want COMPLETED with the reason blanked", got)
			}
			if got := e.learner(t, as.ID); got.Status != "ERASED" || got.Email != nil {
				t.Errorf("follow-up read: %+v, want ERASED", got)
			}
			if again := e.learnersByEmail(t, as.Email); len(again) != 0 {
				t.Errorf("requestErasure left a learner with the email: %+v", again)
			}
			e.expectAuditBy(t, e.ctl.ID, as.ID, "learner.erasure.request", who, as.ActorID, nil)
			e.expectAuditBy(t, e.ctl.ID, as.ID, "learner.erase", who, as.ActorID, nil)
		},
	}
}

func azOpWithdrawConsentOnBehalf(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		id, orgID, as := e.changedLearner(t, target, who)
		before := e.learner(t, id)
		reason := e.uniq("withdrawal by letter, ref ")
		vars := map[string]any{"id": id, "r": reason}
		return authzCall{
			query:   `mutation($id: ID!, $r: String!) { withdrawConsentOnBehalf(learnerId: $id, reason: $r) { id status email organisation { id } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			as:      as,
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ WithdrawConsentOnBehalf authzLearner }
				authzDecode(t, data, &out)
				// CTL-8: access ends at once and, with no withdrawal delay, so does the data.
				if l := out.WithdrawConsentOnBehalf; l.ID != id || l.Organisation.ID != orgID || l.Status != "ERASED" || l.Email != nil {
					t.Fatalf("withdrawConsentOnBehalf = %+v, want %s ERASED", l, id)
				}
				if got := e.learner(t, id); got.Status != "ERASED" {
					t.Errorf("follow-up read: status %s, want ERASED", got.Status)
				}
				// The reason was blanked when the learner was erased in the same request (GEN-2).
				e.expectAudit(t, e.ctl.ID, id, "learner.withdraw.on_behalf", who, func(en authzAuditEntry) bool { return en.Reason == "" })
				e.expectAudit(t, e.ctl.ID, id, "learner.erase", who, nil)
			},
			unchanged: func(t *testing.T) {
				if got := e.learner(t, id); got.Status != before.Status || authzStr(got.Email) != authzStr(before.Email) {
					t.Errorf("refused withdrawConsentOnBehalf changed the learner: %+v → %+v", before, got)
				}
			},
		}
	}
}

// azOpDecideDataRequest approves (or rejects) a fresh request awaiting the
// controller: of a Medway or KCC learner of Connect to Learn, or of a West
// Sussex learner of Onclick.
func azOpDecideDataRequest(target string, approve bool) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		orgID, pid := e.requestOrg(target)
		rid, lid := e.newRequest(t, orgID)
		note := e.uniq("authorisation matrix decision ")
		query := `mutation($id: ID!, $n: String) { approveDataRequest(requestId: $id, note: $n) { ` + authzRequestFields + ` } }`
		status, action := "COMPLETED", "data_request.approve"
		if !approve {
			query = `mutation($id: ID!, $n: String!) { rejectDataRequest(requestId: $id, reason: $n) { ` + authzRequestFields + ` } }`
			status, action = "REJECTED", "data_request.reject"
		}
		wantLearner := "ERASED"
		if !approve {
			wantLearner = "WITHDRAWN" // a withdrawal stays one; only its erasure was refused
		}
		vars := map[string]any{"id": rid, "n": note}
		return authzCall{
			query:   query,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out map[string]authzRequest
				authzDecode(t, data, &out)
				var r authzRequest
				for _, v := range out {
					r = v
				}
				if r.ID != rid || r.LearnerID != lid || r.OrganisationID != orgID || r.Status != status ||
					authzStr(r.DecidedBy) != e.actorIDs[who] || r.DecidedAt == nil || r.DecisionNote != note {
					t.Fatalf("decided request = %+v, want %s by %s", r, status, e.actorIDs[who])
				}
				if got := e.request(t, pid, rid); got.Status != status {
					t.Errorf("follow-up read: request %+v, want %s", got, status)
				}
				if got := e.learner(t, lid); got.Status != wantLearner {
					t.Errorf("follow-up read: learner status %s, want %s", got.Status, wantLearner)
				}
				e.expectAudit(t, pid, lid, action, who, func(en authzAuditEntry) bool { return en.Details["dataRequestId"] == rid })
				if approve {
					e.expectAudit(t, pid, lid, "learner.erase", who, func(en authzAuditEntry) bool { return en.Reason == "ONC-5" })
				}
			},
			unchanged: func(t *testing.T) {
				if got := e.request(t, pid, rid); got.Status != "AWAITING_APPROVAL" || got.DecidedBy != nil {
					t.Errorf("refused decision changed the request: %+v", got)
				}
				if got := e.learner(t, lid); got.Status != "WITHDRAWN" {
					t.Errorf("refused decision changed the learner: status %s", got.Status)
				}
			},
		}
	}
}

func azOpMarkLeaver(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		id, orgID, as := e.changedLearner(t, target, who)
		before := e.learner(t, id)
		reason := e.uniq("left the council, ref ")
		vars := map[string]any{"id": id, "r": reason}
		return authzCall{
			query:   `mutation($id: ID!, $r: String!) { markLeaver(learnerId: $id, reason: $r) { id status removalReason removalDueAt organisation { id } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			as:      as,
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ MarkLeaver authzLearner }
				authzDecode(t, data, &out)
				l := out.MarkLeaver
				// CTL-9: access ends at once; erasure after the leaver grace period.
				if l.ID != id || l.Organisation.ID != orgID || l.Status != "REMOVAL_SCHEDULED" || authzStr(l.RemovalReason) != "LEAVER" ||
					!authzTime(t, l.RemovalDueAt).After(e.api.Clock.Now()) {
					t.Fatalf("markLeaver = %+v", l)
				}
				if got := e.learner(t, id); got.Status != "REMOVAL_SCHEDULED" || authzStr(got.RemovalReason) != "LEAVER" {
					t.Errorf("follow-up read: %+v", got)
				}
				e.expectAudit(t, e.ctl.ID, id, "learner.leaver", who, func(en authzAuditEntry) bool { return en.Reason == reason })
			},
			unchanged: func(t *testing.T) {
				if got := e.learner(t, id); got.Status != before.Status || got.RemovalReason != nil {
					t.Errorf("refused markLeaver changed the learner: %+v → %+v", before, got)
				}
			},
		}
	}
}

// azOpReinstateLearner reverses a fresh leaver's scheduled removal within the
// grace period (GEN-4).
func azOpReinstateLearner(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		id, orgID, as := e.changedLearner(t, target, who)
		e.markLeaverFixture(t, id)
		reason := e.uniq("not a leaver after all, ref ")
		vars := map[string]any{"id": id, "r": reason}
		return authzCall{
			query:   `mutation($id: ID!, $r: String!) { reinstateLearner(learnerId: $id, reason: $r) { id status removalReason removalDueAt organisation { id } } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			as:      as,
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ ReinstateLearner authzLearner }
				authzDecode(t, data, &out)
				// Back to what it had: no compulsory policy accepted yet.
				if l := out.ReinstateLearner; l.ID != id || l.Organisation.ID != orgID || l.Status != "PENDING_ACCEPTANCE" ||
					l.RemovalReason != nil || l.RemovalDueAt != nil {
					t.Fatalf("reinstateLearner = %+v", l)
				}
				if got := e.learner(t, id); got.Status != "PENDING_ACCEPTANCE" || got.RemovalReason != nil {
					t.Errorf("follow-up read: %+v", got)
				}
				e.expectAudit(t, e.ctl.ID, id, "learner.reinstate", who, func(en authzAuditEntry) bool { return en.Reason == reason })
			},
			unchanged: func(t *testing.T) {
				if got := e.learner(t, id); got.Status != "REMOVAL_SCHEDULED" || authzStr(got.RemovalReason) != "LEAVER" {
					t.Errorf("refused reinstateLearner changed the learner: %+v", got)
				}
			},
		}
	}
}

type authzRoster struct {
	DryRun, Applied                      bool
	RosterSize, ActiveLearners, ToRemove int
	Share, Threshold                     float64
	RemovalDueAt                         string
	LearnerIds                           []string
	BadLines                             []struct {
		Line   int
		Code   string
		Reason *string
	}
}

const authzRosterQuery = `mutation($o: ID!, $emails: [String!]!, $dry: Boolean!, $allow: Float) {
	reconcileRoster(organisationId: $o, emails: $emails, dryRun: $dry, allowRemovingMoreThan: $allow) {
		dryRun rosterSize activeLearners toRemove share threshold applied removalDueAt learnerIds badLines { line code reason } } }`

// azOpReconcileRosterDryRun: a dry run of a roster holding one learner of the
// organisation, a malformed line and another organisation's address. The
// safety valve is raised (everyone else would go), and nothing is written.
func azOpReconcileRosterDryRun(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		o := e.org(target)
		kept, others := e.medwayLearner, []string{e.self}
		foreign := "someone@" + e.emailDomain(e.kcc.ID)
		if o.ID == e.kcc.ID {
			kept, others, foreign = e.kccLearner, nil, "someone@"+e.emailDomain(e.medway.ID)
		}
		keptEmail := authzStr(e.learner(t, kept).Email)
		vars := map[string]any{"o": o.ID, "emails": []string{keptEmail, "not an email", foreign}, "dry": true, "allow": 1.0}
		mark := e.auditMark(t, e.ctl.ID)
		return authzCall{
			query:   authzRosterQuery,
			vars:    vars,
			missing: authzWith(vars, "o", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct{ ReconcileRoster authzRoster }
				authzDecode(t, data, &out)
				rep := out.ReconcileRoster
				if !rep.DryRun || rep.Applied || rep.RosterSize != 1 || rep.Threshold != 1.0 || rep.ActiveLearners < 1+len(others) ||
					rep.ToRemove != rep.ActiveLearners-1 || len(rep.LearnerIds) != rep.ToRemove {
					t.Fatalf("reconcileRoster = %+v", rep)
				}
				if slices.Contains(rep.LearnerIds, kept) {
					t.Errorf("the learner on the roster would be removed")
				}
				for _, id := range others {
					if !slices.Contains(rep.LearnerIds, id) {
						t.Errorf("%s, not on the roster, would not be removed", id)
					}
				}
				if len(rep.BadLines) != 2 || rep.BadLines[0].Line != 2 || rep.BadLines[1].Line != 3 ||
					authzStr(rep.BadLines[1].Reason) != "DOMAIN_NOT_OWNED" {
					t.Errorf("badLines = %+v, want lines 2 and 3 (3: DOMAIN_NOT_OWNED)", rep.BadLines)
				}
				// Invariant 4: a dry run writes nothing.
				if es := e.auditAfter(t, e.ctl.ID, mark); len(es) > 0 {
					t.Errorf("a dry run wrote audit entries: %+v", es)
				}
				for _, id := range append([]string{kept}, others...) {
					if got := e.learner(t, id); got.Status == "REMOVAL_SCHEDULED" {
						t.Errorf("a dry run scheduled %s", id)
					}
				}
			},
		}
	}
}

// orgEmails lists the emails of every learner of an organisation, as the bootstrap admin.
func (e *authzEnv) orgEmails(t *testing.T, orgID string) []string {
	t.Helper()
	var emails []string
	var after *string
	for {
		var out struct {
			Learners struct {
				Edges    []struct{ Node authzLearner }
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		e.boot(t, `query($p: ID!, $o: ID, $a: String) { learners(programmeId: $p, organisationId: $o, first: 500, after: $a) {
			edges { node { id email } } pageInfo { hasNextPage endCursor } } }`,
			map[string]any{"p": e.ctl.ID, "o": orgID, "a": after}, &out)
		for _, ed := range out.Learners.Edges {
			if ed.Node.Email != nil {
				emails = append(emails, *ed.Node.Email)
			}
		}
		if !out.Learners.PageInfo.HasNextPage {
			return emails
		}
		after = out.Learners.PageInfo.EndCursor
	}
}

// azOpReconcileRosterApplied applies Medway's roster: every learner of it but
// one fresh learner, who alone is scheduled for removal (CTL-9, GEN-4).
func azOpReconcileRosterApplied(t *testing.T, e *authzEnv, who string) authzCall {
	leaver := e.newLearner(t, e.medway.ID)
	leaverEmail := authzStr(e.learner(t, leaver).Email)
	roster := slices.DeleteFunc(e.orgEmails(t, e.medway.ID), func(em string) bool { return em == leaverEmail })
	vars := map[string]any{"o": e.medway.ID, "emails": roster, "dry": false, "allow": 1.0}
	return authzCall{
		query:   authzRosterQuery,
		vars:    vars,
		missing: authzWith(vars, "o", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct{ ReconcileRoster authzRoster }
			authzDecode(t, data, &out)
			rep := out.ReconcileRoster
			if rep.DryRun || !rep.Applied || rep.ToRemove != 1 || !slices.Equal(rep.LearnerIds, []string{leaver}) || len(rep.BadLines) != 0 {
				t.Fatalf("reconcileRoster = %+v, want only %s scheduled", rep, leaver)
			}
			got := e.learner(t, leaver)
			if got.Status != "REMOVAL_SCHEDULED" || authzStr(got.RemovalReason) != "ROSTER_RECONCILIATION" ||
				!authzTime(t, got.RemovalDueAt).Equal(authzTime(t, &rep.RemovalDueAt)) {
				t.Errorf("follow-up read: %+v, want a removal scheduled with the automated grace (GEN-4)", got)
			}
			if got := e.learner(t, e.self); got.Status == "REMOVAL_SCHEDULED" {
				t.Errorf("the roster scheduled the learner on it: %+v", got)
			}
			e.expectAudit(t, e.ctl.ID, e.medway.ID, "roster.reconcile", who, func(en authzAuditEntry) bool { return en.Details["scheduled"] == 1.0 })
			e.expectAudit(t, e.ctl.ID, leaver, "learner.schedule_removal", who, func(en authzAuditEntry) bool { return en.Reason == "ROSTER_RECONCILIATION" })
		},
		unchanged: func(t *testing.T) {
			if got := e.learner(t, leaver); got.Status != "PENDING_ACCEPTANCE" {
				t.Errorf("refused reconcileRoster changed the learner: %+v", got)
			}
		},
	}
}

// azOpRunRetentionSweep sweeps Connect to Learn: nothing is due (the clock
// stands still, the contract runs), so nothing is done.
func azOpRunRetentionSweep(t *testing.T, e *authzEnv, who string) authzCall {
	vars := map[string]any{"p": e.ctl.ID}
	mark := e.auditMark(t, e.ctl.ID)
	return authzCall{
		query:   `mutation($p: ID!) { runRetentionSweep(programmeId: $p) { programmeId skipped contractEnded erased scheduledInactive requestsOpened } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				RunRetentionSweep struct {
					ProgrammeID                               string
					Skipped, ContractEnded                    bool
					Erased, ScheduledInactive, RequestsOpened int
				}
			}
			authzDecode(t, data, &out)
			rep := out.RunRetentionSweep
			if rep.ProgrammeID != e.ctl.ID || rep.Skipped || rep.ContractEnded || rep.Erased != 0 || rep.ScheduledInactive != 0 || rep.RequestsOpened != 0 {
				t.Fatalf("runRetentionSweep = %+v, want nothing done", rep)
			}
			if es := e.auditAfter(t, e.ctl.ID, mark); len(es) > 0 {
				t.Errorf("a sweep with nothing to do wrote audit entries: %+v", es)
			}
			if got := e.learner(t, e.medwayLearner); got.Status != "PENDING_ACCEPTANCE" {
				t.Errorf("the sweep changed %s: %+v", e.medwayLearner, got)
			}
		},
	}
}

// authzPtr shows what a pointer points to, in failure messages.
func authzPtr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// ---------------------------------------------------------------------------
// The LMS sync API: desired state, change feed, activity and API keys (CTL-4,
// CTL-10, ONC-3, invariant 3). lms_test.go tests what they do; these cases
// test who may call them.

func authzLMSOperations(ops map[string]authzOp) {
	ops["apiKeys"] = azOpAPIKeys
	ops["issueApiKey"] = azOpIssueAPIKey
	for _, target := range []string{"", "otherProgramme"} {
		at := ""
		if target != "" {
			at = "@" + target
		}
		ops["enrolments"+at] = azOpEnrolments(target)
		ops["lifecycleEvents"+at] = azOpLifecycleEvents(target)
		ops["recordLearningActivity"+at] = azOpRecordLearningActivity(target)
		ops["revokeApiKey"+at] = azOpRevokeAPIKey(target)
	}
}

// lmsTarget resolves an LMS operation's target to a programme and the
// organisation whose learners it uses: Connect to Learn and Medway Council,
// or (otherProgramme) Onclick and West Sussex County Council.
func (e *authzEnv) lmsTarget(target string) (programmeID, orgID string) {
	if target == "otherProgramme" {
		return e.onc.ID, e.wscc.ID
	}
	return e.ctl.ID, e.medway.ID
}

// activeLearner creates a learner of the organisation and accepts its
// programme's current compulsory policies on their behalf: an ACTIVE learner,
// in the desired state with the courses of their access group (CTL-4).
func (e *authzEnv) activeLearner(t *testing.T, programmeID, orgID string) string {
	t.Helper()
	id := e.newLearner(t, orgID)
	var p struct {
		Programme struct {
			Policies []struct {
				Compulsory     bool
				CurrentVersion *struct{ ID string }
			}
		}
	}
	e.boot(t, `query($id: ID!) { programme(id: $id) { policies { compulsory currentVersion { id } } } }`, map[string]any{"id": programmeID}, &p)
	var versions []string
	for _, pol := range p.Programme.Policies {
		if pol.Compulsory && pol.CurrentVersion != nil {
			versions = append(versions, pol.CurrentVersion.ID)
		}
	}
	var out struct{ AcceptPoliciesOnBehalf struct{ Status string } }
	e.boot(t, `mutation($id: ID!, $in: AcceptPoliciesInput!) {
		acceptPoliciesOnBehalf(learnerId: $id, input: $in, note: "authorisation matrix fixture") { status } }`,
		map[string]any{"id": id, "in": map[string]any{"policyVersionIds": versions, "confirmMinimumAge": true}}, &out)
	if out.AcceptPoliciesOnBehalf.Status != "ACTIVE" {
		t.Fatalf("fixture learner is %s after accepting the compulsory policies", out.AcceptPoliciesOnBehalf.Status)
	}
	return id
}

// defaultCourses lists the lmsCourseIds of the organisation's default access group, sorted.
func (e *authzEnv) defaultCourses(t *testing.T, orgID string) []string {
	t.Helper()
	var out struct {
		Organisation struct {
			AccessGroups []struct {
				IsDefault bool
				Courses   []struct{ LmsCourseID string }
			}
		}
	}
	e.boot(t, `query($id: ID!) { organisation(id: $id) { accessGroups { isDefault courses { lmsCourseId } } } }`, map[string]any{"id": orgID}, &out)
	for _, g := range out.Organisation.AccessGroups {
		if g.IsDefault {
			ids := authzMap(g.Courses, func(c struct{ LmsCourseID string }) string { return c.LmsCourseID })
			slices.Sort(ids)
			return ids
		}
	}
	t.Fatalf("organisation %s has no default access group", orgID)
	return nil
}

// feedHead is a position at the head of the programme's feed: the asOf of
// the desired state's first page, read as the bootstrap admin.
func (e *authzEnv) feedHead(t *testing.T, programmeID string) string {
	t.Helper()
	var out struct {
		Enrolments struct{ AsOf *string }
	}
	e.boot(t, `query($p: ID!) { enrolments(programmeId: $p, first: 1) { asOf } }`, map[string]any{"p": programmeID}, &out)
	if out.Enrolments.AsOf == nil {
		t.Fatal("enrolments gave no asOf")
	}
	return *out.Enrolments.AsOf
}

func (e *authzEnv) lastActivityAt(t *testing.T, learnerID string) *string {
	t.Helper()
	var out struct {
		Learner struct{ LastActivityAt *string }
	}
	e.boot(t, `query($id: ID!) { learner(id: $id) { lastActivityAt } }`, map[string]any{"id": learnerID}, &out)
	return out.Learner.LastActivityAt
}

type authzAPIKey struct {
	ID, ProgrammeID, Name, Prefix string
	RevokedAt                     *string
}

const authzAPIKeyFields = `id programmeId name prefix revokedAt`

// newAPIKey issues a key of the programme as the bootstrap admin.
func (e *authzEnv) newAPIKey(t *testing.T, programmeID string) (authzAPIKey, string) {
	t.Helper()
	var out struct {
		IssueAPIKey struct {
			APIKey authzAPIKey
			Secret string
		} `json:"issueApiKey"`
	}
	e.boot(t, `mutation($p: ID!, $n: String!) { issueApiKey(programmeId: $p, name: $n) { apiKey { `+authzAPIKeyFields+` } secret } }`,
		map[string]any{"p": programmeID, "n": e.uniq("authorisation matrix fixture key ")}, &out)
	return out.IssueAPIKey.APIKey, out.IssueAPIKey.Secret
}

func (e *authzEnv) apiKeys(t *testing.T, programmeID string) []authzAPIKey {
	t.Helper()
	var out struct {
		APIKeys []authzAPIKey `json:"apiKeys"`
	}
	e.boot(t, `query($p: ID!) { apiKeys(programmeId: $p) { `+authzAPIKeyFields+` } }`, map[string]any{"p": programmeID}, &out)
	return out.APIKeys
}

func (e *authzEnv) apiKey(t *testing.T, programmeID, id string) (authzAPIKey, bool) {
	t.Helper()
	for _, k := range e.apiKeys(t, programmeID) {
		if k.ID == id {
			return k, true
		}
	}
	return authzAPIKey{}, false
}

// keyViewer presents an API key: the HTTP status, and the key's roles when it is accepted.
func (e *authzEnv) keyViewer(t *testing.T, secret string) (int, []authzGrant) {
	t.Helper()
	r := e.api.Do(secret, `{ viewer { roles { id role subject programmeId organisationId governingBodyId } } }`, nil)
	if r.Status != http.StatusOK {
		if r.Code() != "UNAUTHENTICATED" {
			t.Errorf("API key refused with status %d %s, want UNAUTHENTICATED", r.Status, authzErrs(r))
		}
		return r.Status, nil
	}
	var out struct{ Viewer struct{ Roles []authzGrant } }
	r.Decode(t, &out)
	return r.Status, out.Viewer.Roles
}

func azOpEnrolments(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		pid, orgID := e.lmsTarget(target)
		id := e.activeLearner(t, pid, orgID)
		pending := e.newLearner(t, orgID)
		want := e.defaultCourses(t, orgID)
		vars := map[string]any{"p": pid}
		return authzCall{
			query: `query($p: ID!) { enrolments(programmeId: $p, first: 5000) {
				enrolments { learnerId accessGroupId lmsCourseId learnerVersion } hasNextPage asOf } }`,
			vars:    vars,
			missing: authzWith(vars, "p", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					Enrolments struct {
						Enrolments []struct {
							LearnerID, AccessGroupID, LmsCourseID string
							LearnerVersion                        int
						}
						HasNextPage bool
						AsOf        *string
					}
				}
				authzDecode(t, data, &out)
				if out.Enrolments.HasNextPage || out.Enrolments.AsOf == nil {
					t.Fatalf("enrolments: hasNextPage %v, asOf %v; want one page with asOf", out.Enrolments.HasNextPage, out.Enrolments.AsOf)
				}
				var got []string
				for _, r := range out.Enrolments.Enrolments {
					switch r.LearnerID {
					case id:
						got = append(got, r.LmsCourseID)
					case pending, e.medwayLearner, e.kccLearner, e.self:
						t.Errorf("enrolments list %s, who has not accepted the policies (CTL-4: active learners only)", r.LearnerID)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("the active learner's enrolments %v, want the default group's courses %v", got, want)
				}
			},
		}
	}
}

func azOpLifecycleEvents(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		pid, orgID := e.lmsTarget(target)
		head := e.feedHead(t, pid)
		id := e.newLearner(t, orgID)
		vars := map[string]any{"p": pid, "a": head}
		return authzCall{
			query: `query($p: ID!, $a: String) { lifecycleEvents(programmeId: $p, after: $a, first: 100) {
				events { cursor type learnerId learnerVersion learner { id } } cursor hasMore } }`,
			vars:    vars,
			missing: authzWith(vars, "p", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					LifecycleEvents struct {
						Events []struct {
							Cursor, Type, LearnerID string
							LearnerVersion          int
							Learner                 *struct{ ID string }
						}
						Cursor  string
						HasMore bool
					}
				}
				authzDecode(t, data, &out)
				f := out.LifecycleEvents
				if len(f.Events) != 1 || f.HasMore {
					t.Fatalf("the feed after the head: %+v, want the fresh learner's provisioning only", f)
				}
				ev := f.Events[0]
				if ev.Type != "LEARNER_PROVISIONED" || ev.LearnerID != id || ev.LearnerVersion != 1 || ev.Learner == nil || ev.Learner.ID != id || f.Cursor != ev.Cursor {
					t.Errorf("event %+v (learner %v), cursor %q; want LEARNER_PROVISIONED of %s at version 1", ev, authzPtr(ev.Learner), f.Cursor, id)
				}
			},
		}
	}
}

func azOpRecordLearningActivity(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		pid, orgID := e.lmsTarget(target)
		id := e.newLearner(t, orgID)
		course := e.defaultCourses(t, orgID)[0]
		at := e.api.Clock.Now().Add(-time.Hour).UTC()
		vars := map[string]any{"p": pid, "in": []map[string]any{{"learnerId": id, "lastAccessAt": at.Format(time.RFC3339),
			"enrolments": []map[string]any{{"lmsCourseId": course, "state": "IN_PROGRESS"}}}}}
		return authzCall{
			query: `mutation($p: ID!, $in: [LearningActivityInput!]!) { recordLearningActivity(programmeId: $p, input: $in) {
				applied rejected results { index learnerId status } } }`,
			vars:    vars,
			missing: authzWith(vars, "p", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					RecordLearningActivity struct {
						Applied, Rejected int
						Results           []struct {
							Index             int
							LearnerID, Status string
						}
					}
				}
				authzDecode(t, data, &out)
				rec := out.RecordLearningActivity
				if rec.Applied != 1 || rec.Rejected != 0 || len(rec.Results) != 1 || rec.Results[0].LearnerID != id || rec.Results[0].Status != "APPLIED" {
					t.Fatalf("recordLearningActivity = %+v, want the one row APPLIED", rec)
				}
				if got := e.lastActivityAt(t, id); got == nil || !authzTime(t, got).Equal(at) {
					t.Errorf("follow-up read: lastActivityAt %v, want %s (ONC-3, CTL-7)", authzPtr(got), at.Format(time.RFC3339))
				}
				e.expectAudit(t, pid, pid, "activity.record", who, func(en authzAuditEntry) bool { return en.Details["applied"] == 1.0 })
			},
			unchanged: func(t *testing.T) {
				if got := e.lastActivityAt(t, id); got != nil {
					t.Errorf("refused recordLearningActivity set lastActivityAt %s", *got)
				}
			},
		}
	}
}

func azOpAPIKeys(t *testing.T, e *authzEnv, who string) authzCall {
	key, secret := e.newAPIKey(t, e.ctl.ID)
	vars := map[string]any{"p": e.ctl.ID}
	return authzCall{
		query:   `query($p: ID!) { apiKeys(programmeId: $p) { ` + authzAPIKeyFields + ` createdAt } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				APIKeys []authzAPIKey `json:"apiKeys"`
			}
			authzDecode(t, data, &out)
			if !slices.ContainsFunc(out.APIKeys, func(k authzAPIKey) bool { return k == key }) {
				t.Errorf("apiKeys %+v lack the fresh key %+v", out.APIKeys, key)
			}
			for _, k := range out.APIKeys {
				if k.ProgrammeID != e.ctl.ID {
					t.Errorf("apiKeys of Connect to Learn list a key of another programme: %+v", k)
				}
			}
			if strings.Contains(string(data), secret[len(key.Prefix):]) {
				t.Errorf("apiKeys return a secret (it is shown once, at issue)")
			}
		},
	}
}

func azOpIssueAPIKey(t *testing.T, e *authzEnv, who string) authzCall {
	name := e.uniq("authorisation matrix key ")
	vars := map[string]any{"p": e.ctl.ID, "n": name}
	named := func(t *testing.T) []authzAPIKey {
		return slices.DeleteFunc(e.apiKeys(t, e.ctl.ID), func(k authzAPIKey) bool { return k.Name != name })
	}
	return authzCall{
		query:   `mutation($p: ID!, $n: String!) { issueApiKey(programmeId: $p, name: $n) { apiKey { ` + authzAPIKeyFields + ` } secret } }`,
		vars:    vars,
		missing: authzWith(vars, "p", uuid.NewString()),
		ok: func(t *testing.T, data json.RawMessage) {
			var out struct {
				IssueAPIKey struct {
					APIKey authzAPIKey
					Secret string
				} `json:"issueApiKey"`
			}
			authzDecode(t, data, &out)
			k, secret := out.IssueAPIKey.APIKey, out.IssueAPIKey.Secret
			if k.ProgrammeID != e.ctl.ID || k.Name != name || k.RevokedAt != nil || !strings.HasPrefix(secret, "rk_") ||
				k.Prefix == "" || !strings.HasPrefix(secret, k.Prefix) || len(k.Prefix) >= len(secret) {
				t.Fatalf("issueApiKey = %+v with secret %.6s…", k, secret)
			}
			if got := named(t); len(got) != 1 || got[0] != k {
				t.Errorf("follow-up read: apiKeys named %q = %+v, want %+v", name, got, k)
			}
			// The key is an LMS of Connect to Learn, and nothing else.
			if status, roles := e.keyViewer(t, secret); status != http.StatusOK || len(roles) != 1 ||
				roles[0].Role != string(domain.RoleLMS) || roles[0].ProgrammeID != e.ctl.ID || roles[0].Subject != k.ID {
				t.Errorf("the new key: status %d, roles %+v; want the LMS role of Connect to Learn", status, roles)
			}
			e.expectAudit(t, e.ctl.ID, k.ID, "api_key.issue", who, func(en authzAuditEntry) bool { return en.Details["name"] == name })
		},
		unchanged: func(t *testing.T) {
			if got := named(t); len(got) != 0 {
				t.Errorf("refused issueApiKey issued %+v", got)
			}
		},
	}
}

// azOpRevokeAPIKey revokes a fresh key of Connect to Learn, or of Onclick.
func azOpRevokeAPIKey(target string) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		pid, _ := e.lmsTarget(target)
		key, secret := e.newAPIKey(t, pid)
		vars := map[string]any{"id": key.ID}
		return authzCall{
			query:   `mutation($id: ID!) { revokeApiKey(apiKeyId: $id) { ` + authzAPIKeyFields + ` } }`,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				var out struct {
					RevokeAPIKey authzAPIKey `json:"revokeApiKey"`
				}
				authzDecode(t, data, &out)
				k := out.RevokeAPIKey
				if k.ID != key.ID || k.ProgrammeID != pid || k.RevokedAt == nil {
					t.Fatalf("revokeApiKey = %+v, want %s revoked", k, key.ID)
				}
				if got, _ := e.apiKey(t, pid, key.ID); got.RevokedAt == nil {
					t.Errorf("follow-up read: %+v, want revokedAt", got)
				}
				if status, _ := e.keyViewer(t, secret); status != http.StatusUnauthorized {
					t.Errorf("the revoked key answers %d, want 401 at once", status)
				}
				e.expectAudit(t, pid, key.ID, "api_key.revoke", who, nil)
			},
			unchanged: func(t *testing.T) {
				if got, ok := e.apiKey(t, pid, key.ID); !ok || got.RevokedAt != nil {
					t.Errorf("refused revokeApiKey: the key reads %+v", got)
				}
				if status, _ := e.keyViewer(t, secret); status != http.StatusOK {
					t.Errorf("refused revokeApiKey: the key answers %d", status)
				}
			},
		}
	}
}

// azOpChangeIdentityProvider updates (a new client ID, the audience following
// it) or removes a provider registered for the case: the organisation's, or
// (target "") a programme's own. The learner's case names Medway's provider,
// the one they sign in with, which they may not change.
func azOpChangeIdentityProvider(target string, remove bool) authzOp {
	return func(t *testing.T, e *authzEnv, who string) authzCall {
		var pid string
		orgID := ""
		if target != "" {
			orgID = e.org(target).ID
		}
		if orgID == e.medway.ID && who == azLearnerMedway {
			pid = e.medwayProvider
		} else {
			if orgID != "" {
				e.freeProvider(t, orgID)
			}
			pid = e.registerProvider(t, orgID, e.uniq(azFakeIssuerStart), e.uniq("authz-client-"))
		}
		var before authzProvider
		for _, p := range e.providers(t) {
			if p.ID == pid {
				before = p
			}
		}
		newClient := e.uniq("authz-client-fixed-")
		query := `mutation($id: ID!, $in: IdentityProviderUpdateInput!) { updateIdentityProvider(providerId: $id, input: $in) { ` + authzProviderFields + ` } }`
		vars := map[string]any{"id": pid, "in": map[string]any{"clientId": newClient}}
		if remove {
			query = `mutation($id: ID!) { removeIdentityProvider(providerId: $id, reason: "the council moved tenants") { providerId sessionsRevoked } }`
			vars = map[string]any{"id": pid}
		}
		current := func(t *testing.T) (authzProvider, bool) {
			for _, p := range e.providers(t) {
				if p.ID == pid {
					return p, true
				}
			}
			return authzProvider{}, false
		}
		return authzCall{
			query:   query,
			vars:    vars,
			missing: authzWith(vars, "id", uuid.NewString()),
			ok: func(t *testing.T, data json.RawMessage) {
				p, ok := current(t)
				if remove {
					if ok {
						t.Fatalf("removed provider still listed: %+v", p)
					}
					e.expectAudit(t, e.ctl.ID, pid, "identity_provider.remove", who, func(en authzAuditEntry) bool {
						return en.Details["issuer"] == before.Issuer
					})
					return
				}
				if !ok || p.ClientID != newClient || p.Audience != newClient || p.Issuer != before.Issuer {
					t.Fatalf("updated provider = %+v (%v), want client ID and audience %s", p, ok, newClient)
				}
				e.expectAudit(t, e.ctl.ID, pid, "identity_provider.update", who, func(en authzAuditEntry) bool {
					return en.Details["changed"] == "clientId"
				})
			},
			unchanged: func(t *testing.T) {
				p, ok := current(t)
				p.OrganisationID, before.OrganisationID = nil, nil // compare values, not pointers
				if !ok || p != before {
					t.Errorf("a refused change changed the provider: %+v (%v), was %+v", p, ok, before)
				}
			},
		}
	}
}
