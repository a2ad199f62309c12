// Package seed loads a programme from a YAML file (examples/*.yaml) through
// the lifecycle use cases, as a system actor, so seeded data passes the same
// validation and audit as data entered over the API. Seeding is idempotent:
// what exists (matched by name, lmsCourseId, label) is left alone, including
// the courses of an access group that an admin has changed since: only the
// groups of an organisation admitted in this run (whose default group the
// admission made) get the file's courses. So `rollcall serve` in dev mode,
// which seeds the demo on every start, never reverts an admin's change.
package seed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rollcall-dev/rollcall/internal/apperr"
	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

type File struct {
	Programme struct {
		Name   string `yaml:"name"`
		Preset string `yaml:"preset"`
		Rules  *struct {
			ContractEndsAt *time.Time `yaml:"contractEndsAt"`
			MinimumAge     *int       `yaml:"minimumAge"`
			LMSURL         *string    `yaml:"lmsUrl"`
		} `yaml:"rules"`
		GoverningBodies []struct {
			Key          string `yaml:"key"`
			Name         string `yaml:"name"`
			Role         string `yaml:"role"`
			Organisation string `yaml:"organisation"`
		} `yaml:"governingBodies"`
	} `yaml:"programme"`
	Courses []struct {
		LMSCourseID string `yaml:"lmsCourseId"`
		Title       string `yaml:"title"`
	} `yaml:"courses"`
	Organisations []struct {
		Key          string `yaml:"key"`
		Name         string `yaml:"name"`
		Kind         string `yaml:"kind"`
		Illustrative bool   `yaml:"illustrative"`
		Domains      []struct {
			Domain            string `yaml:"domain"`
			IncludeSubdomains bool   `yaml:"includeSubdomains"`
		} `yaml:"domains"`
		AccessGroups []struct {
			Name    string   `yaml:"name"`
			Default bool     `yaml:"default"`
			Courses []string `yaml:"courses"`
		} `yaml:"accessGroups"`
	} `yaml:"organisations"`
	Policies []struct {
		Key        string `yaml:"key"`
		Name       string `yaml:"name"`
		Type       string `yaml:"type"`
		Audience   string `yaml:"audience"`
		Compulsory bool   `yaml:"compulsory"`
		Versions   []struct {
			Label   string `yaml:"label"`
			Summary string `yaml:"summary"`
			Content string `yaml:"content"`
			Active  bool   `yaml:"active"`
		} `yaml:"versions"`
	} `yaml:"policies"`
}

// Parse reads a seed file strictly: unknown keys are errors.
func Parse(r io.Reader) (*File, error) {
	b, err := io.ReadAll(io.LimitReader(r, 8<<20))
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("seed file: %w", err)
	}
	if f.Programme.Name == "" {
		return nil, fmt.Errorf("seed file: programme.name is required")
	}
	return &f, nil
}

// Report counts what a run created.
type Report struct {
	ProgrammeID  string
	Created      map[string]int
	ProgrammeNew bool
}

// Apply loads f. ctx must carry a system actor (lifecycle.WithSystem).
func Apply(ctx context.Context, svc *lifecycle.Service, f *File) (Report, error) {
	rep := Report{Created: map[string]int{}}
	p, err := svc.ProgrammeByName(ctx, f.Programme.Name)
	switch apperr.CodeOf(err) {
	case "":
	case apperr.NotFound:
		in := lifecycle.CreateProgrammeInput{Name: f.Programme.Name, Preset: domain.Preset(f.Programme.Preset)}
		for _, b := range f.Programme.GoverningBodies {
			in.GoverningBodies = append(in.GoverningBodies, lifecycle.GoverningBodyInput{Name: b.Name, Role: domain.GoverningBodyRole(b.Role)})
		}
		if r := f.Programme.Rules; r != nil {
			in.Rules = &lifecycle.RuleSettingsPatch{ContractEndsAt: r.ContractEndsAt, MinimumAge: r.MinimumAge, LMSURL: r.LMSURL}
		}
		if p, err = svc.CreateProgramme(ctx, in); err != nil {
			return rep, fmt.Errorf("programme: %w", err)
		}
		rep.ProgrammeNew = true
		rep.Created["programmes"]++
	default:
		return rep, err
	}
	rep.ProgrammeID = p.ID

	courses, err := svc.CoursesByProgrammes(ctx, []string{p.ID})
	if err != nil {
		return rep, err
	}
	courseByLMS := map[string]string{}
	for _, c := range courses[p.ID] {
		courseByLMS[c.LMSCourseID] = c.ID
	}
	for _, c := range f.Courses {
		if _, ok := courseByLMS[c.LMSCourseID]; ok {
			continue
		}
		nc, err := svc.CreateCourse(ctx, p.ID, lifecycle.CourseInput{LMSCourseID: c.LMSCourseID, Title: c.Title})
		if err != nil {
			return rep, fmt.Errorf("course %s: %w", c.LMSCourseID, err)
		}
		courseByLMS[c.LMSCourseID] = nc.ID
		rep.Created["courses"]++
	}

	orgs, err := svc.OrganisationsByProgrammes(ctx, []string{p.ID})
	if err != nil {
		return rep, err
	}
	orgByName := map[string]domain.Organisation{}
	for _, o := range orgs[p.ID] {
		orgByName[o.Name] = o
	}
	orgByKey := map[string]string{}
	for _, o := range f.Organisations {
		orgNew := false
		if existing, ok := orgByName[o.Name]; ok {
			orgByKey[o.Key] = existing.ID
		} else {
			orgNew = true
			in := lifecycle.ProposeMembershipInput{ProgrammeID: p.ID, Action: domain.ProposalAdmit, Name: o.Name,
				Kind: domain.OrganisationKind(o.Kind), Reason: "seed"}
			for _, d := range o.Domains {
				in.Domains = append(in.Domains, lifecycle.DomainInput{Domain: d.Domain, IncludeSubdomains: d.IncludeSubdomains})
			}
			prop, err := svc.ProposeMembership(ctx, in)
			if err != nil {
				return rep, fmt.Errorf("organisation %s: %w", o.Name, err)
			}
			// A system actor approves once per governing body (CTL-1).
			for prop.Status == domain.ProposalPending {
				if prop, err = svc.ApproveMembership(ctx, prop.ID, "seed"); err != nil {
					return rep, fmt.Errorf("organisation %s: %w", o.Name, err)
				}
			}
			orgByKey[o.Key] = *prop.OrganisationID
			rep.Created["organisations"]++
		}
		if err := applyGroups(ctx, svc, orgByKey[o.Key], orgNew, o.AccessGroups, courseByLMS, &rep); err != nil {
			return rep, fmt.Errorf("organisation %s: %w", o.Name, err)
		}
	}

	bodies, err := svc.GoverningBodies(ctx, p.ID)
	if err != nil {
		return rep, err
	}
	for _, fb := range f.Programme.GoverningBodies {
		orgID, ok := orgByKey[fb.Organisation]
		if fb.Organisation == "" || !ok {
			continue
		}
		for _, b := range bodies {
			if b.Name == fb.Name && b.OrganisationID == nil {
				if err := svc.LinkGoverningBody(ctx, b.ID, orgID); err != nil {
					return rep, err
				}
			}
		}
	}

	return rep, applyPolicies(ctx, svc, p.ID, f, &rep)
}

// applyGroups creates the file's groups that are missing. The courses of a
// group that exists are set only when its organisation was admitted in this
// run (the admission made its default group, without courses); otherwise
// they are the admins' to change and are left alone.
func applyGroups(ctx context.Context, svc *lifecycle.Service, orgID string, orgNew bool, groups []struct {
	Name    string   `yaml:"name"`
	Default bool     `yaml:"default"`
	Courses []string `yaml:"courses"`
}, courseByLMS map[string]string, rep *Report) error {
	existing, err := svc.AccessGroupsByOrganisations(ctx, []string{orgID})
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(existing[orgID]))
	for _, g := range existing[orgID] {
		ids = append(ids, g.ID)
	}
	current, err := svc.CoursesByAccessGroups(ctx, ids)
	if err != nil {
		return err
	}
	for _, fg := range groups {
		want := make([]string, 0, len(fg.Courses))
		for _, lms := range fg.Courses {
			id, ok := courseByLMS[lms]
			if !ok {
				return fmt.Errorf("group %s: unknown course %s", fg.Name, lms)
			}
			want = append(want, id)
		}
		var match *domain.AccessGroup
		for _, g := range existing[orgID] {
			if (fg.Default && g.IsDefault) || (!fg.Default && g.Name == fg.Name) {
				match = &g
				break
			}
		}
		if match == nil {
			if _, err := svc.CreateAccessGroup(ctx, orgID, lifecycle.AccessGroupInput{Name: fg.Name, CourseIDs: want}); err != nil {
				return fmt.Errorf("group %s: %w", fg.Name, err)
			}
			rep.Created["accessGroups"]++
			continue
		}
		if !orgNew {
			continue
		}
		have := make([]string, 0)
		for _, c := range current[match.ID] {
			have = append(have, c.ID)
		}
		slices.Sort(have)
		sorted := slices.Clone(want)
		slices.Sort(sorted)
		if !slices.Equal(have, slices.Compact(sorted)) {
			if _, err := svc.SetAccessGroupCourses(ctx, match.ID, want); err != nil {
				return fmt.Errorf("group %s: %w", fg.Name, err)
			}
			rep.Created["groupCourseSets"]++
		}
	}
	return nil
}

func applyPolicies(ctx context.Context, svc *lifecycle.Service, programmeID string, f *File, rep *Report) error {
	pols, err := svc.PoliciesByProgrammes(ctx, []string{programmeID})
	if err != nil {
		return err
	}
	byName := map[string]domain.Policy{}
	ids := []string{}
	for _, p := range pols[programmeID] {
		byName[p.Name] = p
		ids = append(ids, p.ID)
	}
	versions, err := svc.PolicyVersionsByPolicies(ctx, ids)
	if err != nil {
		return err
	}
	for _, fp := range f.Policies {
		pol, ok := byName[fp.Name]
		if !ok {
			pol, err = svc.CreatePolicy(ctx, programmeID, lifecycle.PolicyInput{Name: fp.Name, Type: domain.PolicyType(fp.Type),
				Audience: domain.PolicyAudience(fp.Audience), Compulsory: fp.Compulsory})
			if err != nil {
				return fmt.Errorf("policy %s: %w", fp.Name, err)
			}
			rep.Created["policies"]++
		}
		have := map[string]bool{}
		for _, v := range versions[pol.ID] {
			have[v.Label] = true
		}
		for _, fv := range fp.Versions {
			if have[fv.Label] {
				continue
			}
			if _, err := svc.PublishPolicyVersion(ctx, pol.ID, lifecycle.PolicyVersionInput{Label: fv.Label,
				Summary: fv.Summary, Content: fv.Content, Activate: fv.Active}); err != nil {
				return fmt.Errorf("policy %s version %s: %w", fp.Name, fv.Label, err)
			}
			rep.Created["policyVersions"]++
		}
	}
	return nil
}
