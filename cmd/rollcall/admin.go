package main

// The commands an operator uses to reach a first admin without reading code:
// whoami (what issuer|subject a token names), grant (the first grant, recorded
// and audited as the CLI), provider add (register the identity provider whose
// tokens that grant is for) and ready (the container health check).

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/rollcall-dev/rollcall/internal/auth"
	"github.com/rollcall-dev/rollcall/internal/config"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

// whoami prints the issuer and subject a token names, and the settings that
// would make its holder an admin. It reads the token from its argument or,
// with no argument or "-", from stdin (so it stays out of shell history).
// Nothing is verified: whoami only reads; Rollcall verifies every token it
// is sent.
func whoami(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 1 {
		return errors.New("usage: rollcall whoami [TOKEN|-]   (the token your identity provider issues for Rollcall)")
	}
	raw := ""
	if len(args) == 1 && args[0] != "-" {
		raw = args[0]
	} else {
		line, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		raw = line
	}
	raw = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(raw), "Bearer "))
	if raw == "" {
		return errors.New("whoami: no token given")
	}
	if strings.HasPrefix(raw, auth.APIKeyPrefix) {
		return errors.New("whoami: this is a Rollcall API key, not a token from an identity provider")
	}
	// The algorithms an OIDC provider signs with (go-jose requires the list;
	// Rollcall itself accepts asymmetric signatures only).
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA})
	if err != nil {
		return fmt.Errorf("whoami: not a signed JWT (%v)", err)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return fmt.Errorf("whoami: %v", err)
	}
	if c.Issuer == "" || c.Subject == "" {
		return errors.New("whoami: the token has no iss or sub claim")
	}
	fmt.Fprintf(stdout, "issuer:   %s\nsubject:  %s\naudience: %s\n", c.Issuer, c.Subject, strings.Join(c.Audience, " "))
	if c.Expiry != nil {
		fmt.Fprintf(stdout, "expires:  %s\n", c.Expiry.Time().UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "identity: %s|%s\n", c.Issuer, c.Subject)
	if err := auth.CheckIssuerURL(c.Issuer, false); err != nil {
		fmt.Fprintf(stdout, "\nNote: Rollcall accepts this issuer only as a loopback test issuer (%v).\n", err)
	}
	aud := ""
	if len(c.Audience) == 1 {
		aud = c.Audience[0]
	}
	fmt.Fprintf(stdout, "\nTo make this identity the bootstrap admin:\n  ROLLCALL_BOOTSTRAP_ADMIN='%s|%s'\n  ROLLCALL_BOOTSTRAP_AUDIENCE='%s'\n", c.Issuer, c.Subject, aud)
	fmt.Fprintf(stdout, "Or grant it a role in a programme:\n  rollcall grant --programme NAME --role PROGRAMME_ADMIN --issuer '%s' --subject '%s'\n", c.Issuer, c.Subject)
	fmt.Fprintln(stdout, "(The token was read, not verified.)")
	return nil
}

// grantCmd records a role grant as the CLI (audited as system:cli). It is the
// first grant of an installation without ROLLCALL_BOOTSTRAP_ADMIN, and it
// refuses an identity whose tokens this installation would never accept.
func grantCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grant", flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "PROGRAMME_ADMIN, ORGANISATION_ADMIN, AUDITOR or LMS")
	issuer := fs.String("issuer", "", "the identity's issuer (rollcall whoami prints it)")
	subject := fs.String("subject", "", "the identity's subject (rollcall whoami prints it)")
	programme := fs.String("programme", "", "programme name or ID")
	organisation := fs.String("organisation", "", "organisation name or ID (ORGANISATION_ADMIN)")
	body := fs.String("body", "", "governing body name (a PROGRAMME_ADMIN approving for it, CTL-1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *role == "" || *issuer == "" || *subject == "" {
		return errors.New("usage: rollcall grant --programme NAME|ID --role ROLE --issuer URL --subject SUB [--organisation NAME|ID] [--body NAME]")
	}
	cfg, svc, closeStore, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeStore()
	sctx := lifecycle.WithSystem(ctx, "cli")
	iss := strings.TrimSpace(*issuer)
	accepted := iss == cfg.BootstrapIssuer || (cfg.Dev && iss == cfg.DevIssuerURL())
	if !accepted {
		_, _, ok, err := svc.IssuerRegistration(sctx, iss)
		if err != nil {
			return err
		}
		accepted = ok
	}
	if !accepted {
		return fmt.Errorf("--issuer: no identity provider with issuer %s is registered, so Rollcall would refuse every token from it; register it first with `rollcall provider add` (or set ROLLCALL_BOOTSTRAP_ADMIN to an identity at that issuer)", iss)
	}
	in, err := grantInput(sctx, svc, iss, strings.TrimSpace(*subject), strings.ToUpper(*role), *programme, *organisation, *body)
	if err != nil {
		return err
	}
	g, err := svc.GrantRole(sctx, in)
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	fmt.Fprintf(stdout, "granted %s in programme %s to %s|%s (grant %s)\n", g.Role, g.ProgrammeID, g.Issuer, g.Subject, g.ID)
	return nil
}

// grantInput resolves programme, organisation and governing body names to
// IDs for a grant (shared by grant and dev-token).
func grantInput(ctx context.Context, svc *lifecycle.Service, iss, sub, role, programme, organisation, body string) (lifecycle.GrantRoleInput, error) {
	in := lifecycle.GrantRoleInput{Issuer: iss, Subject: sub, Role: domain.Role(role)}
	p, err := findProgramme(ctx, svc, programme)
	if err != nil {
		return in, err
	}
	in.ProgrammeID = p.ID
	if organisation != "" {
		orgs, err := svc.OrganisationsByProgrammes(ctx, []string{p.ID})
		if err != nil {
			return in, err
		}
		for _, o := range orgs[p.ID] {
			if o.ID == organisation || strings.EqualFold(o.Name, organisation) {
				in.OrganisationID = &o.ID
			}
		}
		if in.OrganisationID == nil {
			return in, fmt.Errorf("--organisation: no organisation %q in %s", organisation, p.Name)
		}
	}
	if body != "" {
		bodies, err := svc.GoverningBodies(ctx, p.ID)
		if err != nil {
			return in, err
		}
		for _, b := range bodies {
			if strings.EqualFold(b.Name, body) || b.ID == body {
				in.GoverningBodyID = &b.ID
			}
		}
		if in.GoverningBodyID == nil {
			return in, fmt.Errorf("--body: no governing body %q in %s", body, p.Name)
		}
	}
	return in, nil
}

// providerCmd registers an identity provider as the CLI: the programme's own
// (no --organisation) or an organisation's. It is the same use case as
// registerIdentityProvider, with the same checks.
func providerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "add" {
		return errors.New("usage: rollcall provider add --programme NAME|ID [--organisation NAME|ID] --issuer URL --client-id ID [--audience AUD] [--client-secret-env ROLLCALL_IDP_SECRET_X] [--email-trust TRUSTED]")
	}
	fs := flag.NewFlagSet("provider add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	programme := fs.String("programme", "", "programme name or ID")
	organisation := fs.String("organisation", "", "organisation name or ID (default: the programme's own provider)")
	issuer := fs.String("issuer", "", "the provider's issuer URL (https)")
	clientID := fs.String("client-id", "", "Rollcall's client (application) ID at the provider")
	audience := fs.String("audience", "", "the audience of its tokens for Rollcall (default: the client ID)")
	secretEnv := fs.String("client-secret-env", "", "the ROLLCALL_IDP_SECRET_* variable holding the client secret (browser login)")
	trust := fs.String("email-trust", "VERIFIED_CLAIM", "VERIFIED_CLAIM or TRUSTED (Entra ID work accounts)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 || *issuer == "" || *clientID == "" {
		return errors.New("provider add: --issuer and --client-id are required")
	}
	_, svc, closeStore, err := openService(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeStore()
	sctx := lifecycle.WithSystem(ctx, "cli")
	in, err := grantInput(sctx, svc, "", "", "", *programme, *organisation, "")
	if err != nil {
		return err
	}
	pin := lifecycle.IdentityProviderInput{Issuer: *issuer, ClientID: *clientID, Audience: *audience, EmailTrust: domain.EmailTrust(strings.ToUpper(*trust))}
	if *secretEnv != "" {
		pin.ClientSecretEnv = secretEnv
	}
	org := ""
	if in.OrganisationID != nil {
		org = *in.OrganisationID
	}
	p, err := svc.RegisterIdentityProvider(sctx, in.ProgrammeID, org, pin)
	if err != nil {
		return fmt.Errorf("provider add: %w", err)
	}
	fmt.Fprintf(stdout, "registered provider %s (issuer %s, audience %s) in programme %s\n", p.ID, p.Issuer, p.Audience, p.ProgrammeID)
	return nil
}

// ready asks the local service's /readyz (the container health check: the
// image has no shell or curl). It exits non-zero unless the answer is 200.
func ready(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 0 {
		return errors.New("usage: rollcall ready")
	}
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(cfg.Listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: /readyz answered %d", resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
