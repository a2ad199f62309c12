package graph

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/domain"
)

// The feed's event types are the domain's constants (gqlgen.yml binds the
// enum to them): every one is a value of the schema's LifecycleEventType and
// is written as its own name, so a feed page says what changed (INV-3).
func TestLifecycleEventType_INV3_EveryDomainTypeIsWrittenAsItsName(t *testing.T) {
	enum := NewExecutableSchema(Config{}).Schema().Types["LifecycleEventType"]
	if enum == nil {
		t.Fatal("the schema has no LifecycleEventType")
	}
	var names []string
	for _, v := range enum.EnumValues {
		names = append(names, v.Name)
	}
	var domainNames []string
	ec := &executionContext{}
	for _, et := range domain.EventTypes {
		domainNames = append(domainNames, string(et))
		var b bytes.Buffer
		ec.marshalNLifecycleEventType2githubᚗcomᚋrollcallᚑdevᚋrollcallᚋinternalᚋdomainᚐEventType(context.Background(), nil, et).MarshalGQL(&b)
		if want := strconv.Quote(string(et)); b.String() != want {
			t.Errorf("%s is written as %s, want %s", et, b.String(), want)
		}
	}
	slices.Sort(names)
	slices.Sort(domainNames)
	if !slices.Equal(names, domainNames) {
		t.Errorf("schema LifecycleEventType values %v, domain event types %v", names, domainNames)
	}
}
