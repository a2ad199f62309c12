package moodlesync

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// stateFormat is bumped when the file's meaning changes.
const stateFormat = 1

// state is what the agent remembers between runs. It holds no personal
// data: Rollcall learner and access-group IDs, Moodle course idnumbers and
// version numbers only.
type state struct {
	Format      int    `json:"format"`
	ProgrammeID string `json:"programmeId"`
	MoodleURL   string `json:"moodleUrl"`
	// Cursor is the feed position everything before which is applied;
	// empty means "list the desired state first".
	Cursor string `json:"cursor,omitempty"`
	// Learners maps a learner ID to what was last applied for them.
	Learners map[string]*learnerState `json:"learners"`
	// AccessGroups are the access-group IDs whose Moodle cohorts (cohort
	// idnumber = access-group ID) this agent manages.
	AccessGroups []string `json:"accessGroups,omitempty"`
	// Courses are the lmsCourseIds (course idnumbers) the agent has
	// enrolled learners on.
	Courses []string `json:"courses,omitempty"`
	// Parked are learners that could not be applied, with why; they are
	// retried with back-off while everyone else goes on.
	Parked map[string]*Parked `json:"parked,omitempty"`
}

// Parked is a learner the agent could not apply. It holds no personal
// data: Moodle's error code, the error with email addresses redacted, and
// a hint for the administrator.
type Parked struct {
	Since    time.Time `json:"since"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next"`
	// Code is Moodle's errorcode or warning code (or the agent's:
	// missingcourse, noemail, duplicateidnumber).
	Code   string `json:"code"`
	Reason string `json:"reason"`
	Hint   string `json:"hint"`
}

type learnerState struct {
	// Version is the highest learnerVersion applied: events at or below it
	// are skipped.
	Version int64 `json:"v"`
	// Erased: the Moodle account was deleted.
	Erased bool `json:"erased,omitempty"`
	// Group is the access group whose cohort the account was put in.
	Group string `json:"group,omitempty"`
	// Courses are the lmsCourseIds the account was enrolled on by this
	// agent; dropping one from the learner's courses unenrols them.
	Courses []string `json:"courses,omitempty"`
	// MoodleID is the learner's Moodle user ID, once known.
	MoodleID int64 `json:"moodleId,omitempty"`
}

// Applied: something of this learner was applied (or found to need
// nothing), so Group and Courses are what Moodle has from the agent.
func (ls *learnerState) Applied() bool { return ls.Version > 0 }

// StateError is a state file that cannot be used: unreadable, or written
// for another programme or Moodle.
type StateError struct {
	Path string
	Err  error
}

func (e *StateError) Error() string { return "state file " + e.Path + ": " + e.Err.Error() }
func (e *StateError) Unwrap() error { return e.Err }

// loadState reads path; a missing file is a fresh state.
func loadState(path, programmeID, moodleURL string) (*state, error) {
	st := &state{Format: stateFormat, ProgrammeID: programmeID, MoodleURL: moodleURL, Learners: map[string]*learnerState{},
		Parked: map[string]*Parked{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, &StateError{path, err}
	}
	var got state
	if err := json.Unmarshal(b, &got); err != nil {
		return nil, &StateError{path, fmt.Errorf("not valid JSON (delete it to start over with a full sync): %w", err)}
	}
	switch {
	case got.Format != stateFormat:
		return nil, &StateError{path, fmt.Errorf("format %d, this agent writes %d", got.Format, stateFormat)}
	case got.ProgrammeID != programmeID:
		return nil, &StateError{path, fmt.Errorf("written for programme %q, not %q: use one state file per programme", got.ProgrammeID, programmeID)}
	case got.MoodleURL != moodleURL:
		return nil, &StateError{path, fmt.Errorf("written for Moodle %q, not %q: use one state file per Moodle", got.MoodleURL, moodleURL)}
	}
	if got.Learners == nil {
		got.Learners = map[string]*learnerState{}
	}
	if got.Parked == nil {
		got.Parked = map[string]*Parked{}
	}
	return &got, nil
}

// save writes the state durably: a temporary file in the same directory,
// fsync, rename over the old one, fsync the directory. A crash leaves
// either the old file or the new one, never a torn one.
func (st *state) save(path string) error {
	sort.Strings(st.AccessGroups)
	sort.Strings(st.Courses)
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return &StateError{path, err}
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return &StateError{path, err}
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return &StateError{path, err}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return &StateError{path, err}
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename itself durable. Not every platform can sync a
		// directory; the rename is still atomic there.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (st *state) learner(id string) *learnerState {
	ls := st.Learners[id]
	if ls == nil {
		ls = &learnerState{}
		st.Learners[id] = ls
	}
	return ls
}

func (st *state) hasGroup(id string) bool {
	for _, g := range st.AccessGroups {
		if g == id {
			return true
		}
	}
	return false
}

func (st *state) addCourse(id string) {
	if id != "" && !containsString(st.Courses, id) {
		st.Courses = append(st.Courses, id)
	}
}

func (st *state) addGroup(id string) {
	if id != "" && !st.hasGroup(id) {
		st.AccessGroups = append(st.AccessGroups, id)
	}
}
