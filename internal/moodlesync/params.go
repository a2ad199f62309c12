package moodlesync

import (
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Param is one key=value pair of a Moodle REST request.
type Param struct{ Key, Value string }

// Params is a Moodle REST request body in order. Order matters: PHP builds
// its arrays in the order keys arrive, and Moodle processes (and answers)
// list items in that order, so users[10] must not overtake users[2] the way
// it would in url.Values.Encode's sorted output.
type Params []Param

// EncodeParams flattens args into Moodle's (PHP's) bracket notation:
//
//	{"users": []any{map[string]any{"username": "a", "suspended": true}}}
//	→ users[0][username]=a&users[0][suspended]=1
//
// Maps (string keys, taken in sorted order) become [key] levels and slices or
// arrays become [0], [1], … levels. Strings, integers, floats and booleans
// (1 or 0) are leaves. A nil value (nil interface, pointer, map or slice) is
// left out, because Moodle's REST protocol has no null: an optional
// parameter is either sent or absent; an empty list cannot be sent either,
// so it is absent too. Anything else (structs, channels, funcs, keys with
// brackets) is an error.
func EncodeParams(args map[string]any) (Params, error) {
	var out Params
	if err := flatten("", reflect.ValueOf(args), &out); err != nil {
		return nil, err
	}
	return out, nil
}

func flatten(prefix string, v reflect.Value, out *Params) error {
	for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil // an untyped nil
	}
	name := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "[" + k + "]"
	}
	switch v.Kind() {
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("moodle params %s: map keys must be strings, not %s", prefix, v.Type().Key())
		}
		keys := make([]string, 0, v.Len())
		for _, k := range v.MapKeys() {
			keys = append(keys, k.String())
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "" || strings.ContainsAny(k, "[]=&") {
				return fmt.Errorf("moodle params %s: invalid key %q", prefix, k)
			}
			if err := flatten(name(k), v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key())), out); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		if prefix == "" {
			return fmt.Errorf("moodle params: the top level must be a map of parameter names")
		}
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		for i := 0; i < v.Len(); i++ {
			if err := flatten(name(strconv.Itoa(i)), v.Index(i), out); err != nil {
				return err
			}
		}
		return nil
	}
	if prefix == "" {
		return fmt.Errorf("moodle params: the top level must be a map of parameter names")
	}
	var s string
	switch v.Kind() {
	case reflect.String:
		s = v.String()
	case reflect.Bool:
		s = "0"
		if v.Bool() {
			s = "1"
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s = strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s = strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		s = strconv.FormatFloat(v.Float(), 'f', -1, 64)
	default:
		return fmt.Errorf("moodle params %s: cannot encode a %s", prefix, v.Type())
	}
	*out = append(*out, Param{Key: prefix, Value: s})
	return nil
}

// Encode is the application/x-www-form-urlencoded body, in order.
func (p Params) Encode() string {
	var b strings.Builder
	for i, kv := range p {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv.Key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv.Value))
	}
	return b.String()
}

// Get returns the value of key, or "" when absent.
func (p Params) Get(key string) string {
	for _, kv := range p {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}
