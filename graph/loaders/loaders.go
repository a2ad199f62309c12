// Package loaders batches the relation reads of one GraphQL request so a
// nested query runs a fixed number of SQL statements whatever its width.
package loaders

import (
	"context"
	"net/http"
	"time"

	"github.com/vikstrous/dataloadgen"

	"github.com/rollcall-dev/rollcall/internal/domain"
	"github.com/rollcall-dev/rollcall/internal/lifecycle"
)

type ctxKey struct{}

// Loaders are created per request: their caches must not outlive it, because
// what an actor may see is decided per request.
type Loaders struct {
	GoverningBodies *dataloadgen.Loader[string, []domain.GoverningBody]
	Organisations   *dataloadgen.Loader[string, []domain.Organisation]
	Domains         *dataloadgen.Loader[string, []domain.DomainRule]
	AccessGroups    *dataloadgen.Loader[string, []domain.AccessGroup]
	GroupCourses    *dataloadgen.Loader[string, []domain.Course]
	ProgrammeCourse *dataloadgen.Loader[string, []domain.Course]
	Policies        *dataloadgen.Loader[string, []domain.Policy]
	PolicyVersions  *dataloadgen.Loader[string, []domain.PolicyVersion]
	Acceptances     *dataloadgen.Loader[string, []domain.PolicyAcceptance]
	Organisation    *dataloadgen.Loader[string, domain.Organisation]
	AccessGroup     *dataloadgen.Loader[string, domain.AccessGroup]
	PolicyVersion   *dataloadgen.Loader[string, domain.PolicyVersion]
	Learner         *dataloadgen.Loader[string, domain.Learner]
}

// DefaultWait is how long a loader gathers keys before one fetch; gqlgen
// resolves sibling fields concurrently, so a short window collects a whole
// level of the query.
const DefaultWait = 5 * time.Millisecond

func grouped[T any](wait time.Duration, fetch func(ctx context.Context, ids []string) (map[string][]T, error)) *dataloadgen.Loader[string, []T] {
	return dataloadgen.NewLoader(func(ctx context.Context, keys []string) ([][]T, []error) {
		m, err := fetch(ctx, keys)
		out := make([][]T, len(keys))
		errs := make([]error, len(keys))
		for i, k := range keys {
			if err != nil {
				errs[i] = err
				continue
			}
			out[i] = m[k]
		}
		return out, errs
	}, dataloadgen.WithWait(wait), dataloadgen.WithBatchCapacity(1000))
}

// single loads one value per key; a missing key is dataloadgen.ErrNotFound.
func single[T any](wait time.Duration, fetch func(ctx context.Context, ids []string) (map[string]T, error)) *dataloadgen.Loader[string, T] {
	return dataloadgen.NewMappedLoader(fetch, dataloadgen.WithWait(wait), dataloadgen.WithBatchCapacity(1000))
}

func New(svc *lifecycle.Service, wait time.Duration) *Loaders {
	if wait <= 0 {
		wait = DefaultWait
	}
	return &Loaders{
		GoverningBodies: grouped(wait, svc.GoverningBodiesByProgrammes),
		Organisations:   grouped(wait, svc.OrganisationsByProgrammes),
		Domains:         grouped(wait, svc.DomainsByOrganisations),
		AccessGroups:    grouped(wait, svc.AccessGroupsByOrganisations),
		GroupCourses:    grouped(wait, svc.CoursesByAccessGroups),
		ProgrammeCourse: grouped(wait, svc.CoursesByProgrammes),
		Policies:        grouped(wait, svc.PoliciesByProgrammes),
		PolicyVersions:  grouped(wait, svc.PolicyVersionsByPolicies),
		Acceptances:     grouped(wait, svc.AcceptancesByLearners),
		Organisation:    single(wait, svc.OrganisationsByIDs),
		AccessGroup:     single(wait, svc.AccessGroupsByIDs),
		PolicyVersion:   single(wait, svc.PolicyVersionsByIDs),
		Learner:         single(wait, svc.LearnersByIDs),
	}
}

// Middleware attaches fresh loaders to every request.
func Middleware(svc *lifecycle.Service, wait time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), ctxKey{}, New(svc, wait))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// For returns the request's loaders.
func For(ctx context.Context) *Loaders {
	l, _ := ctx.Value(ctxKey{}).(*Loaders)
	return l
}
