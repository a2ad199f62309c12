package main

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/config"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
	"github.com/rollcall-dev/rollcall/internal/oidcissuer"
	"github.com/rollcall-dev/rollcall/internal/web"
)

// devPerson is a made-up person of the demo data that dev mode's sign-in
// page offers. Nothing about them is real.
type devPerson struct {
	key, given, family, email string
	programme, organisation   string
	role                      domain.Role // "" for a learner
	body                      string      // governing body a programme admin approves for (CTL-1)
	about                     string
}

var devPeople = []devPerson{
	{key: "kcc-learner", given: "Sam", family: "Taylor", email: "sam.taylor@kent.gov.uk",
		programme: "Connect to Learn", organisation: "Kent County Council",
		about: "A learner at Kent County Council, in Connect to Learn: no minimum age; withdrawing consent erases the account at once."},
	{key: "wscc-learner", given: "Alex", family: "Morgan", email: "alex.morgan@westsussex.gov.uk",
		programme: "Learn Public Health (West Sussex)", organisation: "West Sussex County Council",
		about: "A learner at West Sussex County Council, in Learn Public Health: confirms being 16 or older; erasure waits for the council's approval."},
	{key: "kcc-org-admin", given: "Priya", family: "Shah", email: "priya.shah@kent.gov.uk",
		programme: "Connect to Learn", organisation: "Kent County Council", role: domain.RoleOrganisationAdmin,
		about: "An organisation admin of Kent County Council: the admin console shows this council's learners only."},
	{key: "ctl-programme-admin", given: "Jo", family: "Evans", email: "jo.evans@kent.gov.uk",
		programme: "Connect to Learn", organisation: "Kent County Council", role: domain.RoleProgrammeAdmin, body: "Kent Connects",
		about: "A programme admin of Connect to Learn, approving for Kent Connects: the admin console shows every partner."},
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// devIdentityProviders registers, for each demo programme, a dev identity
// provider (a real in-process OIDC issuer, internal/oidcissuer) as the
// programme's own provider, grants the demo admins their roles, and returns
// the handler serving those providers (under /dev/idp/) and the sign-in
// page's demo people. Run after the demo data is loaded; running it again
// (a restart) changes nothing.
func devIdentityProviders(ctx context.Context, svc *lifecycle.Service, cfg config.Config, key *rsa.PrivateKey) (http.Handler, *web.DevSignIn, error) {
	ctx = lifecycle.WithSystem(ctx, "dev-mode")
	mux := http.NewServeMux()
	issuers := map[string]*oidcissuer.Issuer{} // by programme name
	orgIDs := map[string]string{}              // by person key
	for _, person := range devPeople {
		p, err := findProgramme(ctx, svc, person.programme)
		if err != nil {
			return nil, nil, err
		}
		iss, ok := issuers[p.Name]
		if !ok {
			slug := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(p.Name), "-"), "-")
			iss = oidcissuer.New(cfg.PublicURL+"/dev/idp/"+slug, key)
			iss.RegisterClient(devClientID, "", cfg.PublicURL+"/auth/callback")
			mux.Handle("/"+slug+"/", http.StripPrefix("/"+slug, iss.Handler()))
			if err := registerDevProvider(ctx, svc, p.ID, iss.URL()); err != nil {
				return nil, nil, err
			}
			issuers[p.Name] = iss
		}
		orgs, err := svc.OrganisationsByProgrammes(ctx, []string{p.ID})
		if err != nil {
			return nil, nil, err
		}
		for _, o := range orgs[p.ID] {
			if o.Name == person.organisation {
				orgIDs[person.key] = o.ID
			}
		}
		if orgIDs[person.key] == "" {
			return nil, nil, fmt.Errorf("dev mode: no organisation %q in %s", person.organisation, p.Name)
		}
		if person.role != "" {
			in := lifecycle.GrantRoleInput{Issuer: iss.URL(), Subject: devSubject(person), Role: person.role, ProgrammeID: p.ID}
			if person.role == domain.RoleOrganisationAdmin {
				id := orgIDs[person.key]
				in.OrganisationID = &id
			}
			if person.body != "" {
				bodies, err := svc.GoverningBodies(ctx, p.ID)
				if err != nil {
					return nil, nil, err
				}
				for _, b := range bodies {
					if b.Name == person.body {
						in.GoverningBodyID = &b.ID
					}
				}
			}
			if _, err := svc.GrantRole(ctx, in); err != nil && apperr.CodeOf(err) != apperr.Conflict {
				return nil, nil, fmt.Errorf("dev mode: grant for %s: %w", person.key, err)
			}
		}
	}
	ds := &web.DevSignIn{Choose: func(k string) (string, error) {
		for _, person := range devPeople {
			if person.key == k {
				issuers[person.programme].SetNextLogin(oidcissuer.User{Subject: devSubject(person), Email: person.email,
					EmailVerified: true, GivenName: person.given, FamilyName: person.family})
				return orgIDs[person.key], nil
			}
		}
		return "", apperr.Invalid("person", "no such demo person")
	}}
	for _, person := range devPeople {
		ds.People = append(ds.People, web.DevPerson{Key: person.key, Name: person.given + " " + person.family,
			Description: person.about + " (" + person.email + ")"})
	}
	return mux, ds, nil
}

const devClientID = "rollcall-dev"

func devSubject(p devPerson) string { return "dev:" + p.email }

// registerDevProvider registers issuer as the programme's own provider (a
// public client: PKCE, no secret) unless it is already.
func registerDevProvider(ctx context.Context, svc *lifecycle.Service, programmeID, issuer string) error {
	ps, err := svc.IdentityProviders(ctx, programmeID)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.Issuer == issuer {
			return nil
		}
		if p.ClientID == devClientID && p.OrganisationID == nil {
			// Providers cannot be re-pointed, and two would compete for the
			// demo people's sign-in.
			u, _ := url.Parse(p.Issuer)
			return fmt.Errorf("dev mode: this database's demo sign-in is set up for %s://%s; serve on that address (ROLLCALL_LISTEN, ROLLCALL_PUBLIC_URL) or start from a new database file",
				u.Scheme, u.Host)
		}
	}
	_, err = svc.RegisterIdentityProvider(ctx, programmeID, "", lifecycle.IdentityProviderInput{Issuer: issuer, ClientID: devClientID,
		EmailTrust: domain.EmailVerifiedClaim})
	if err != nil {
		return fmt.Errorf("dev mode: register the dev identity provider: %w", err)
	}
	return nil
}

// devHint is what `make run` prints: commands that work as printed, from
// the directory `make run` runs in, against this server and database.
func devHint(cfg config.Config, getenv func(string) string) string {
	env := "ROLLCALL_DEV=1"
	for _, k := range []string{"ROLLCALL_DATABASE_URL", "ROLLCALL_LISTEN", "ROLLCALL_PUBLIC_URL", "ROLLCALL_DEV_KEY_FILE"} {
		if v := getenv(k); v != "" {
			env += " " + k + "=" + shellQuote(v)
		}
	}
	u := cfg.PublicURL
	return fmt.Sprintf(`
Rollcall dev mode on %[1]s
  Open %[1]s/ and pick a demo person: two learners, an organisation admin, a programme admin.
  Admins get the console at %[1]s/console.
  A bearer token for the API (in another terminal, from this directory):
    TOKEN=$(%[2]s go run ./cmd/rollcall dev-token --role BOOTSTRAP)
    curl -s %[1]s/graphql -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
      -d '{"query":"{ programmes { name } }"}'
  An organisation admin's token:
    %[2]s go run ./cmd/rollcall dev-token --role ORGANISATION_ADMIN --programme 'Connect to Learn' --organisation 'Medway Council'

`, u, env)
}

// shellQuote quotes v for a POSIX shell.
func shellQuote(v string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`).MatchString(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
