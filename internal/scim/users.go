package scim

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	escim "github.com/elimity-com/scim"
	scimerr "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	filter "github.com/scim2/filter-parser/v2"

	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

const coreUserURN = "urn:ietf:params:scim:schemas:core:2.0:User"

// users is the /Users resource: learners of the token's organisation.
type users struct {
	svc   *lifecycle.Service
	log   *slog.Logger
	reqID func(*http.Request) string
}

// resource renders a learner. Only what Rollcall keeps is returned (CTL-3):
// userName and the one work email are the learner's email; the name; active;
// externalId. Attributes a directory sent and Rollcall dropped are never
// echoed.
func resource(u lifecycle.DirectoryUser) escim.Resource {
	l := u.Learner
	attrs := escim.ResourceAttributes{"active": u.Active}
	if l.Email != nil {
		attrs["userName"] = *l.Email
		attrs["emails"] = []map[string]any{{"value": *l.Email, "type": "work", "primary": true}}
	}
	name := map[string]any{}
	if l.GivenName != nil {
		name["givenName"] = *l.GivenName
	}
	if l.FamilyName != nil {
		name["familyName"] = *l.FamilyName
	}
	if len(name) > 0 {
		attrs["name"] = name
	}
	created, modified := l.CreatedAt, l.UpdatedAt
	if u.Link.UpdatedAt.After(modified) {
		modified = u.Link.UpdatedAt
	}
	res := escim.Resource{ID: l.ID, Attributes: attrs,
		Meta: escim.Meta{Created: &created, LastModified: &modified, Version: etag(u.Version)}}
	if u.Link.ExternalID != nil {
		res.ExternalID = optional.NewString(*u.Link.ExternalID)
	}
	return res
}

// etag is a weak entity tag (RFC 7644 section 3.14): equal representations
// may differ in bytes (attribute order).
func etag(version string) string { return `W/"` + version + `"` }

// ifMatch reads If-Match as a version ("" when absent or "*").
func ifMatch(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	v = strings.TrimPrefix(v, "W/")
	return strings.Trim(v, `"`)
}

func (u *users) Create(r *http.Request, attrs escim.ResourceAttributes) (escim.Resource, error) {
	in := inputOf(attrs)
	out, err := u.svc.DirectoryCreate(r.Context(), in)
	if err != nil {
		return escim.Resource{}, u.scimError(r, err)
	}
	return resource(out), nil
}

func (u *users) Get(r *http.Request, id string) (escim.Resource, error) {
	out, err := u.svc.DirectoryUserByID(r.Context(), id)
	if err != nil {
		return escim.Resource{}, u.scimError(r, err)
	}
	return resource(out), nil
}

func (u *users) GetAll(r *http.Request, p escim.ListRequestParams) (escim.Page, error) {
	var q lifecycle.DirectoryQuery
	if p.FilterValidator != nil {
		if err := conditions(p.FilterValidator.GetFilter(), &q); err != nil {
			return escim.Page{}, err
		}
	}
	list, total, err := u.svc.DirectoryUsers(r.Context(), q, p.StartIndex, p.Count)
	if err != nil {
		return escim.Page{}, u.scimError(r, err)
	}
	page := escim.Page{TotalResults: total, Resources: make([]escim.Resource, len(list))}
	for i, x := range list {
		page.Resources[i] = resource(x)
	}
	return page, nil
}

// Replace is PUT: Okta's AIW apps send every update this way. The user is
// replaced with what was sent; an absent active changes nothing (a missing
// attribute is no leaver signal), an absent externalId clears it, an absent
// name keeps it (a learner keeps a name, CTL-3).
func (u *users) Replace(r *http.Request, id string, attrs escim.ResourceAttributes) (escim.Resource, error) {
	in := inputOf(attrs)
	ch := lifecycle.DirectoryChange{UserName: &in.UserName, ExternalID: &in.ExternalID,
		GivenName: in.GivenName, FamilyName: in.FamilyName, Active: in.Active}
	out, err := u.svc.DirectoryUpdate(r.Context(), id, ch, ifMatch(r))
	if err != nil {
		return escim.Resource{}, u.scimError(r, err)
	}
	return resource(out), nil
}

func (u *users) Delete(r *http.Request, id string) error {
	if err := u.svc.DirectoryDelete(r.Context(), id, ifMatch(r)); err != nil {
		return u.scimError(r, err)
	}
	return nil
}

func (u *users) Patch(r *http.Request, id string, ops []escim.PatchOperation) (escim.Resource, error) {
	var ch lifecycle.DirectoryChange
	for _, op := range ops {
		if err := applyOp(&ch, op); err != nil {
			return escim.Resource{}, err
		}
	}
	out, err := u.svc.DirectoryUpdate(r.Context(), id, ch, ifMatch(r))
	if err != nil {
		return escim.Resource{}, u.scimError(r, err)
	}
	return resource(out), nil
}

// inputOf reads a validated POST or PUT body. The library has already
// checked types and dropped unknown attributes; of the rest, only userName,
// externalId, name.givenName, name.familyName and active are kept (CTL-3):
// Okta's placeholder password, displayName, phone numbers, the enterprise
// extension and everything else are not stored.
func inputOf(attrs escim.ResourceAttributes) lifecycle.DirectoryUserInput {
	var in lifecycle.DirectoryUserInput
	in.UserName, _ = lookup(attrs, "userName").(string)
	if x, ok := lookup(attrs, "externalId").(string); ok {
		in.ExternalID = &x
	}
	if name, ok := lookup(attrs, "name").(map[string]any); ok {
		in.GivenName = str(lookup(name, "givenName"))
		in.FamilyName = str(lookup(name, "familyName"))
	}
	if b, ok := lookup(attrs, "active").(bool); ok {
		in.Active = &b
	}
	return in
}

// applyOp folds one PATCH operation into the change. With a path, or
// without one (the value's keys are then paths themselves, as Entra sends
// {"name.givenName": …} and Okta {"active": false}).
func applyOp(ch *lifecycle.DirectoryChange, op escim.PatchOperation) error {
	if op.Path != nil {
		return applyPath(ch, strings.ToLower(op.Op), *op.Path, op.Value)
	}
	values, ok := op.Value.(map[string]any)
	if !ok {
		return scimerr.ScimErrorInvalidValue
	}
	for k, v := range values {
		if strings.HasPrefix(strings.ToLower(k), "urn:") && !strings.HasPrefix(strings.ToLower(k), strings.ToLower(coreUserURN)+":") {
			continue // an extension's attributes: not kept (CTL-3)
		}
		p, err := filter.ParsePath([]byte(k))
		if err != nil {
			return scimerr.ScimErrorInvalidPath
		}
		if err := applyPath(ch, strings.ToLower(op.Op), p, v); err != nil {
			return err
		}
	}
	return nil
}

func applyPath(ch *lifecycle.DirectoryChange, op string, p filter.Path, v any) error {
	if uri := p.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, coreUserURN) {
		return nil // the enterprise extension and others: accepted, dropped (CTL-3)
	}
	attr := strings.ToLower(p.AttributePath.AttributeName)
	sub := strings.ToLower(p.AttributePath.SubAttributeName())
	if sub == "" && p.SubAttribute != nil {
		sub = strings.ToLower(*p.SubAttribute)
	}
	remove := op == "remove"
	cannotRemove := scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeMutability,
		Detail: attr + " cannot be removed: disable the user with active=false or DELETE it"}
	switch attr {
	case "active":
		if remove {
			return cannotRemove
		}
		b, ok := v.(bool)
		if !ok {
			return scimerr.ScimErrorInvalidValue
		}
		ch.Active = &b
	case "username":
		if remove {
			return cannotRemove
		}
		s, ok := v.(string)
		if !ok {
			return scimerr.ScimErrorInvalidValue
		}
		ch.UserName = &s
	case "externalid":
		var x *string
		if !remove {
			s, ok := v.(string)
			if !ok {
				return scimerr.ScimErrorInvalidValue
			}
			x = &s
		}
		ch.ExternalID = &x
	case "name":
		if remove && (sub == "" || sub == "givenname" || sub == "familyname") {
			return scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeMutability,
				Detail: "a learner's name cannot be removed"}
		}
		switch sub {
		case "givenname":
			ch.GivenName = str(v)
		case "familyname":
			ch.FamilyName = str(v)
		case "":
			if m, ok := v.(map[string]any); ok {
				if s := str(lookup(m, "givenName")); s != nil {
					ch.GivenName = s
				}
				if s := str(lookup(m, "familyName")); s != nil {
					ch.FamilyName = s
				}
			}
		}
	}
	// emails, displayName, phoneNumbers, addresses, title and the rest are
	// accepted and not kept (CTL-3). The learner has one address, its
	// userName: map the address that should be the learner's email to
	// userName (docs/scim.md). Keeping emails[type eq "work"].value apart from
	// it would make the two flip each provisioning cycle when they differ.
	return nil
}

// conditions reduces a filter to equality conditions joined by "and", the
// only forms Entra and Okta send (userName eq "…", externalId eq "…").
// Attribute names and operators are case-insensitive (RFC 7644 section
// 3.4.2.2; the parser lower-cases operators). Anything else is refused as
// invalidFilter rather than answered wrongly.
func conditions(e filter.Expression, q *lifecycle.DirectoryQuery) error {
	unsupported := scimerr.ScimError{Status: http.StatusBadRequest, ScimType: scimerr.ScimTypeInvalidFilter,
		Detail: `supported filters: eq on userName, externalId, id or emails.value, joined with "and"`}
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if x.Operator != filter.AND {
			return unsupported
		}
		if err := conditions(x.Left, q); err != nil {
			return err
		}
		return conditions(x.Right, q)
	case *filter.ValuePath:
		// emails[value eq "…"], optionally with type eq "work".
		if !strings.EqualFold(x.AttributePath.AttributeName, "emails") {
			return unsupported
		}
		return emailConditions(x.ValueFilter, q, unsupported)
	case *filter.AttributeExpression:
		if x.Operator != filter.EQ {
			return unsupported
		}
		if uri := x.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, coreUserURN) {
			return unsupported
		}
		v, ok := compareString(x.CompareValue)
		if !ok {
			return unsupported
		}
		name, sub := strings.ToLower(x.AttributePath.AttributeName), strings.ToLower(x.AttributePath.SubAttributeName())
		switch {
		case name == "username" && sub == "":
			q.UserNames = append(q.UserNames, v)
		case name == "externalid" && sub == "":
			q.ExternalIDs = append(q.ExternalIDs, v)
		case name == "id" && sub == "":
			q.IDs = append(q.IDs, v)
		case name == "emails" && (sub == "value" || sub == ""):
			q.UserNames = append(q.UserNames, v)
		default:
			return unsupported
		}
		return nil
	}
	return unsupported
}

func emailConditions(e filter.Expression, q *lifecycle.DirectoryQuery, unsupported error) error {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if x.Operator != filter.AND {
			return unsupported
		}
		if err := emailConditions(x.Left, q, unsupported); err != nil {
			return err
		}
		return emailConditions(x.Right, q, unsupported)
	case *filter.AttributeExpression:
		v, ok := compareString(x.CompareValue)
		if x.Operator != filter.EQ || !ok {
			return unsupported
		}
		switch strings.ToLower(x.AttributePath.AttributeName) {
		case "value":
			q.UserNames = append(q.UserNames, v)
		case "type":
			if !strings.EqualFold(v, "work") {
				q.MatchNothing = true // the learner's one email is a work email: nothing else matches
			}
		default:
			return unsupported
		}
		return nil
	}
	return unsupported
}

// compareString reads a filter's string value. The parser keeps JSON
// escapes as written (`a\"b`); they are decoded here.
func compareString(v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	if !strings.Contains(s, `\`) {
		return s, true
	}
	var out string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
		return "", false
	}
	return out, true
}

// lookup reads a key case-insensitively (attribute names are, RFC 7643
// section 2.1).
func lookup(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

func str(v any) *string {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	return &s
}
