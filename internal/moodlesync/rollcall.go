package moodlesync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// The two queries of the LMS API the agent uses. Exported so a test can
// check them against the server's schema.
const (
	EnrolmentsQuery = `query RollcallMoodleSyncEnrolments($programmeId: ID!, $first: Int, $after: String) {
  enrolments(programmeId: $programmeId, first: $first, after: $after) {
    enrolments { learnerId email givenName familyName accessGroupId accessGroupName lmsCourseId learnerVersion }
    endCursor
    hasNextPage
    asOf
  }
}`
	LifecycleEventsQuery = `query RollcallMoodleSyncEvents($programmeId: ID!, $after: String, $first: Int, $waitSeconds: Int) {
  lifecycleEvents(programmeId: $programmeId, after: $after, first: $first, waitSeconds: $waitSeconds) {
    events {
      cursor type occurredAt learnerId learnerVersion
      learner { ` + learnerFields + ` }
    }
    cursor
    hasMore
  }
}`
)

// learnerFields are read of every learner. An LMS key reads name and email
// only of learners in the desired state (CTL-10); of the others (whom the
// agent suspends or erases) they may be null, and so may accessAllowed.
const learnerFields = `id email givenName familyName status accessAllowed accessGroup { id name } courses { lmsCourseId } version`

// LearnersQuery reads n learners by ID in one request (aliases l0…l{n-1},
// variables $i0…). The agent uses it for parked learners and for accounts
// that left the desired state (erased, or only without access?).
func LearnersQuery(n int) string {
	var b strings.Builder
	b.WriteString("query RollcallMoodleSyncLearners(")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$i%d: ID!", i)
	}
	b.WriteString(") {\n")
	for i := range n {
		fmt.Fprintf(&b, "  l%d: learner(id: $i%d) { %s }\n", i, i, learnerFields)
	}
	b.WriteString("}")
	return b.String()
}

// OrganisationQuery reads the organisation name of a learner, for naming
// a new cohort.
const OrganisationQuery = `query RollcallMoodleSyncOrganisation($id: ID!) { learner(id: $id) { organisation { name } } }`

type enrolmentRow struct {
	LearnerID       string  `json:"learnerId"`
	Email           string  `json:"email"`
	GivenName       *string `json:"givenName"`
	FamilyName      *string `json:"familyName"`
	AccessGroupID   string  `json:"accessGroupId"`
	AccessGroupName string  `json:"accessGroupName"`
	LMSCourseID     string  `json:"lmsCourseId"`
	LearnerVersion  int64   `json:"learnerVersion"`
}

type enrolmentPage struct {
	Enrolments  []enrolmentRow `json:"enrolments"`
	EndCursor   *string        `json:"endCursor"`
	HasNextPage bool           `json:"hasNextPage"`
	AsOf        *string        `json:"asOf"`
}

type learner struct {
	ID            string  `json:"id"`
	Email         *string `json:"email"`
	GivenName     *string `json:"givenName"`
	FamilyName    *string `json:"familyName"`
	Status        string  `json:"status"`
	AccessAllowed *bool   `json:"accessAllowed"`
	AccessGroup   *struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"accessGroup"`
	Courses []struct {
		LMSCourseID string `json:"lmsCourseId"`
	} `json:"courses"`
	Version int64 `json:"version"`
}

type lifecycleEvent struct {
	Cursor         string   `json:"cursor"`
	Type           string   `json:"type"`
	OccurredAt     string   `json:"occurredAt"` // not used; not parsed, so its format cannot break the sync
	LearnerID      string   `json:"learnerId"`
	LearnerVersion int64    `json:"learnerVersion"`
	Learner        *learner `json:"learner"`
}

type eventPage struct {
	Events  []lifecycleEvent `json:"events"`
	Cursor  string           `json:"cursor"`
	HasMore bool             `json:"hasMore"`
}

type rollcallClient struct {
	endpoint    string
	apiKey      string
	programmeID string
	hc          *http.Client
	retry       Retry
	log         *slog.Logger
}

const rollcallRequestTimeout = 60 * time.Second

func (r *rollcallClient) enrolments(ctx context.Context, after string, first int) (*enrolmentPage, error) {
	vars := map[string]any{"programmeId": r.programmeID, "first": first}
	if after != "" {
		vars["after"] = after
	}
	var data struct {
		Enrolments *enrolmentPage `json:"enrolments"`
	}
	if err := r.query(ctx, "enrolments", EnrolmentsQuery, vars, 0, &data); err != nil {
		return nil, err
	}
	if data.Enrolments == nil {
		return nil, fmt.Errorf("rollcall enrolments: empty answer")
	}
	return data.Enrolments, nil
}

func (r *rollcallClient) lifecycleEvents(ctx context.Context, after string, first int, wait time.Duration) (*eventPage, error) {
	vars := map[string]any{"programmeId": r.programmeID, "after": after, "first": first, "waitSeconds": int(wait / time.Second)}
	var data struct {
		LifecycleEvents *eventPage `json:"lifecycleEvents"`
	}
	if err := r.query(ctx, "lifecycleEvents", LifecycleEventsQuery, vars, wait, &data); err != nil {
		return nil, err
	}
	if data.LifecycleEvents == nil {
		return nil, fmt.Errorf("rollcall lifecycleEvents: empty answer")
	}
	return data.LifecycleEvents, nil
}

// learnersPerRequest keeps a LearnersQuery well inside the service's parser
// limit (graph.DefaultLimits: 5,000 tokens; about 35 per alias).
const learnersPerRequest = 50

// learners reads learners by ID, learnersPerRequest per request. A learner
// the key may not read (NOT_FOUND) is left out of the answer; other errors
// fail.
func (r *rollcallClient) learners(ctx context.Context, ids []string) (map[string]*learner, error) {
	out := map[string]*learner{}
	for start := 0; start < len(ids); start += learnersPerRequest {
		chunk := ids[start:min(len(ids), start+learnersPerRequest)]
		vars := map[string]any{}
		for i, id := range chunk {
			vars[fmt.Sprintf("i%d", i)] = id
		}
		var data map[string]*learner
		err := r.query(ctx, "learners", LearnersQuery(len(chunk)), vars, 0, &data)
		var ge *GraphQLError
		if errors.As(err, &ge) && ge.Code == "NOT_FOUND" {
			err = nil // data holds the readable ones
		}
		if err != nil {
			return nil, err
		}
		for i, id := range chunk {
			if l := data[fmt.Sprintf("l%d", i)]; l != nil {
				out[id] = l
			}
		}
	}
	return out, nil
}

// organisationName is best effort: "" when it cannot be read.
func (r *rollcallClient) organisationName(ctx context.Context, learnerID string) string {
	var data struct {
		Learner *struct {
			Organisation *struct {
				Name string `json:"name"`
			} `json:"organisation"`
		} `json:"learner"`
	}
	if err := r.query(ctx, "organisation", OrganisationQuery, map[string]any{"id": learnerID}, 0, &data); err != nil ||
		data.Learner == nil || data.Learner.Organisation == nil {
		return ""
	}
	return data.Learner.Organisation.Name
}

func (r *rollcallClient) query(ctx context.Context, name, query string, vars map[string]any, wait time.Duration, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	return r.retry.do(ctx, r.log, "rollcall "+name, func(ctx context.Context) error {
		return r.once(ctx, body, wait, out)
	})
}

func (r *rollcallClient) once(ctx context.Context, body []byte, wait time.Duration, out any) error {
	ctx, cancel := context.WithTimeout(ctx, rollcallRequestTimeout+wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.apiKey)
	resp, err := r.hc.Do(req)
	if err != nil {
		return &TransportError{Service: "rollcall", Err: err}
	}
	defer resp.Body.Close()
	if err := redirected("rollcall", resp); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return &TransportError{Service: "rollcall", Err: err}
	}
	var gr struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Path       []any          `json:"path"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &gr); err != nil {
		// Not a GraphQL answer at all: a proxy's error page, say.
		return &HTTPError{Service: "rollcall", StatusCode: resp.StatusCode, Body: snippet(b)}
	}
	if len(gr.Errors) > 0 {
		e := gr.Errors[0]
		code, _ := e.Extensions["code"].(string)
		if code == "" {
			switch {
			case resp.StatusCode >= 500:
				code = "INTERNAL_SERVER_ERROR"
			case resp.StatusCode == http.StatusTooManyRequests:
				code = "RATE_LIMITED"
			default:
				code = "UNKNOWN"
			}
		}
		if out != nil && len(gr.Data) > 0 && string(gr.Data) != "null" {
			_ = json.Unmarshal(gr.Data, out) // partial data, for callers that accept some errors
		}
		return &GraphQLError{Code: code, Message: e.Message, Path: e.Path}
	}
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Service: "rollcall", StatusCode: resp.StatusCode, Body: snippet(b)}
	}
	if err := json.Unmarshal(gr.Data, out); err != nil {
		return fmt.Errorf("rollcall: unexpected answer: %w", err)
	}
	return nil
}
