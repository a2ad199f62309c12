package graph

import (
	"github.com/rollcall-dev/rollcall/graph/model"
	"github.com/rollcall-dev/rollcall/internal/domain"
)

func scimTokenOut(t domain.ScimToken) *model.ScimToken {
	return &model.ScimToken{ID: t.ID, OrganisationID: t.OrganisationID, Name: t.Name, Prefix: t.Prefix,
		CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}
