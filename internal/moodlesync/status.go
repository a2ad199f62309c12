package moodlesync

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sort"
)

// Status is what a state file says, for `rollcall-moodle-sync status`.
type Status struct {
	ProgrammeID string
	MoodleURL   string
	Cursor      string
	Learners    int
	Erased      int
	Parked      []ParkedLearner // by learner ID
}

// ParkedLearner is a parked learner and why.
type ParkedLearner struct {
	LearnerID string
	Parked
}

// ReadStatus reads a state file without an Agent (and without the API key
// or token).
func ReadStatus(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &StateError{path, errors.New("no state file: the agent has not run here, or run --reconcile")}
	}
	if err != nil {
		return nil, &StateError{path, err}
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, &StateError{path, err}
	}
	out := &Status{ProgrammeID: st.ProgrammeID, MoodleURL: st.MoodleURL, Cursor: st.Cursor, Learners: len(st.Learners)}
	for _, ls := range st.Learners {
		if ls.Erased {
			out.Erased++
		}
	}
	for id, p := range st.Parked {
		out.Parked = append(out.Parked, ParkedLearner{LearnerID: id, Parked: *p})
	}
	sort.Slice(out.Parked, func(i, j int) bool { return out.Parked[i].LearnerID < out.Parked[j].LearnerID })
	return out, nil
}
