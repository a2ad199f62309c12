package moodlesync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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
      learner { id email givenName familyName status accessAllowed accessGroup { id name } courses { lmsCourseId } version }
    }
    cursor
    hasMore
  }
}`
)

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
	AccessAllowed bool    `json:"accessAllowed"`
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
