package moodlesync_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/internal/moodlesync"
)

func encode(t *testing.T, args map[string]any) string {
	t.Helper()
	p, err := moodlesync.EncodeParams(args)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, kv := range p {
		parts = append(parts, kv.Key+"="+kv.Value)
	}
	return strings.Join(parts, "&")
}

func TestEncodeParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"scalars", map[string]any{"field": "idnumber", "n": 42, "u": uint8(7), "f": 1.5, "yes": true, "no": false},
			"f=1.5&field=idnumber&n=42&no=0&u=7&yes=1"},
		{"list of scalars", map[string]any{"field": "idnumber", "values": []string{"L1", "L2"}},
			"field=idnumber&values[0]=L1&values[1]=L2"},
		{"create users", map[string]any{"users": []any{map[string]any{
			"username": "ada@example.org", "email": "Ada@Example.org", "idnumber": "L1",
			"firstname": "Ada", "lastname": "Lovelace", "auth": "oauth2"}}},
			"users[0][auth]=oauth2&users[0][email]=Ada@Example.org&users[0][firstname]=Ada&users[0][idnumber]=L1&users[0][lastname]=Lovelace&users[0][username]=ada@example.org"},
		{"update suspended", map[string]any{"users": []map[string]any{{"id": int64(7), "suspended": true}}},
			"users[0][id]=7&users[0][suspended]=1"},
		{"delete", map[string]any{"userids": []int64{7, 8}}, "userids[0]=7&userids[1]=8"},
		{"nested structures", map[string]any{"members": []any{map[string]any{
			"cohorttype": map[string]string{"type": "idnumber", "value": "G1"},
			"usertype":   map[string]any{"type": "id", "value": 7}}}},
			"members[0][cohorttype][type]=idnumber&members[0][cohorttype][value]=G1&members[0][usertype][type]=id&members[0][usertype][value]=7"},
		{"enrol", map[string]any{"enrolments": []any{
			map[string]any{"roleid": 5, "userid": 7, "courseid": 3},
			map[string]any{"roleid": 5, "userid": 7, "courseid": 4}}},
			"enrolments[0][courseid]=3&enrolments[0][roleid]=5&enrolments[0][userid]=7&enrolments[1][courseid]=4&enrolments[1][roleid]=5&enrolments[1][userid]=7"},
		{"nil and empty are absent", map[string]any{"a": nil, "b": []string(nil), "c": []string{}, "d": (*string)(nil), "e": map[string]any{}, "f": "x"},
			"f=x"},
		{"pointers", map[string]any{"p": ptr("v")}, "p=v"},
		{"empty string is sent", map[string]any{"categorytype": map[string]any{"type": "system", "value": ""}},
			"categorytype[type]=system&categorytype[value]="},
		{"arrays", map[string]any{"a": [2]int{1, 2}}, "a[0]=1&a[1]=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := encode(t, tc.args); got != tc.want {
				t.Errorf("\ngot  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Items keep their order past 10: url.Values.Encode would sort users[10]
// before users[2], and PHP would build the array in that order.
func TestEncodeParamsKeepsListOrder(t *testing.T) {
	var ids []int
	for i := range 12 {
		ids = append(ids, 100+i)
	}
	p, err := moodlesync.EncodeParams(map[string]any{"userids": ids})
	if err != nil {
		t.Fatal(err)
	}
	for i, kv := range p {
		if want := "userids[" + itoa(i) + "]"; kv.Key != want || kv.Value != itoa(100+i) {
			t.Fatalf("param %d is %s=%s", i, kv.Key, kv.Value)
		}
	}
	body := p.Encode()
	if !strings.HasPrefix(body, "userids%5B0%5D=100&userids%5B1%5D=101&") || !strings.HasSuffix(body, "userids%5B11%5D=111") {
		t.Errorf("body %s", body)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestParamsEncodeEscapes(t *testing.T) {
	p := moodlesync.Params{{"users[0][email]", "a+b@example.org"}, {"users[0][firstname]", "Zoë & Co=1"}}
	body := p.Encode()
	v, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	if v.Get("users[0][email]") != "a+b@example.org" || v.Get("users[0][firstname]") != "Zoë & Co=1" {
		t.Errorf("round trip of %s: %v", body, v)
	}
	if p.Get("users[0][email]") != "a+b@example.org" || p.Get("nope") != "" {
		t.Error("Get")
	}
}

func TestEncodeParamsRejects(t *testing.T) {
	for name, args := range map[string]map[string]any{
		"struct":          {"u": struct{ A int }{1}},
		"bracket in key":  {"users": []any{map[string]any{"a[b]": 1}}},
		"empty key":       {"users": []any{map[string]any{"": 1}}},
		"non-string keys": {"m": map[int]string{1: "a"}},
		"func":            {"f": func() {}},
	} {
		if _, err := moodlesync.EncodeParams(args); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
