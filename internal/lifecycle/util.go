package lifecycle

import (
	"errors"
	"slices"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

func slicesSortFunc(ls []ImportLine) {
	slices.SortFunc(ls, func(a, b ImportLine) int { return a.Row - b.Row })
}

// reasonOf extracts the parser's reason from an email error.
func reasonOf(err error) string {
	var ee *domain.EmailError
	if errors.As(err, &ee) {
		if ee.DomainErr != nil {
			return string(ee.DomainErr.Reason)
		}
		return string(ee.Reason)
	}
	return "email_invalid"
}

func slicesSortVersions(vs []domain.PolicyVersion) {
	slices.SortFunc(vs, func(a, b domain.PolicyVersion) int {
		if a.PolicyID != b.PolicyID {
			if a.PolicyID < b.PolicyID {
				return -1
			}
			return 1
		}
		return 0
	})
}
