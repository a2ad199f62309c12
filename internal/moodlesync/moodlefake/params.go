package moodlefake

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// node is a PHP request variable: a scalar, or an ordered array built from
// bracket notation (users[0][username]=…).
type node struct {
	leaf  bool
	value string
	keys  []string // in arrival order, as PHP keeps them
	kids  map[string]*node
}

func newArray() *node { return &node{kids: map[string]*node{}} }

// parseVars parses raw query strings the way PHP fills $_GET/$_POST, in
// order; later sources override earlier ones (array_merge($_GET, $_POST)).
func parseVars(raws ...string) (*node, error) {
	root := newArray()
	for _, raw := range raws {
		for _, part := range strings.Split(raw, "&") {
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			key, err := url.QueryUnescape(k)
			if err != nil {
				return nil, err
			}
			val, err := url.QueryUnescape(v)
			if err != nil {
				return nil, err
			}
			root.set(splitKey(key), val)
		}
	}
	return root, nil
}

// splitKey turns users[0][username] into [users 0 username]; a key with
// unbalanced brackets is taken whole.
func splitKey(key string) []string {
	i := strings.IndexByte(key, '[')
	if i <= 0 {
		return []string{key}
	}
	path := []string{key[:i]}
	rest := key[i:]
	for len(rest) > 0 {
		if rest[0] != '[' {
			break // PHP ignores what follows the last ]
		}
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return []string{key}
		}
		path = append(path, rest[1:j])
		rest = rest[j+1:]
	}
	return path
}

func (n *node) set(path []string, value string) {
	cur := n
	for i, k := range path {
		if k == "" && i > 0 { // a[] appends
			next := 0
			for _, ek := range cur.keys {
				if x, err := strconv.Atoi(ek); err == nil && x >= next {
					next = x + 1
				}
			}
			k = strconv.Itoa(next)
		}
		child, ok := cur.kids[k]
		if i == len(path)-1 {
			if !ok {
				cur.keys = append(cur.keys, k)
			}
			cur.kids[k] = &node{leaf: true, value: value}
			return
		}
		if !ok || child.leaf {
			if !ok {
				cur.keys = append(cur.keys, k)
			}
			child = newArray()
			cur.kids[k] = child
		}
		cur = child
	}
}

func (n *node) remove(k string) {
	if _, ok := n.kids[k]; !ok {
		return
	}
	delete(n.kids, k)
	for i, x := range n.keys {
		if x == k {
			n.keys = append(n.keys[:i], n.keys[i+1:]...)
			break
		}
	}
}

// The external_description classes of Moodle's web services, as far as the
// functions here need them.
type kind int

const (
	kValue kind = iota
	kSingle
	kMultiple
)

type ptype int

const (
	pInt ptype = iota
	pRaw
	pText
	pNoTags
	pUsername
	pEmail
	pBool
	pAlpha
	pAlphaNumExt
	pPlugin
)

var ptypeNames = map[ptype]string{pInt: "int", pRaw: "raw", pText: "text", pNoTags: "notags", pUsername: "username",
	pEmail: "email", pBool: "bool", pAlpha: "alpha", pAlphaNumExt: "alphanumext", pPlugin: "plugin"}

type presence int

const (
	required    presence = iota
	optional             // VALUE_OPTIONAL: absent stays absent
	withDefault          // VALUE_DEFAULT
)

type desc struct {
	kind     kind
	typ      ptype
	fields   []field
	elem     *desc
	presence presence
	def      any
}

type field struct {
	name string
	d    *desc
}

func value(t ptype) *desc          { return &desc{kind: kValue, typ: t} }
func single(fs ...field) *desc     { return &desc{kind: kSingle, fields: fs} }
func multiple(elem *desc) *desc    { return &desc{kind: kMultiple, elem: elem} }
func f(name string, d *desc) field { return field{name, d} }
func opt(d *desc) *desc            { c := *d; c.presence = optional; return &c }
func dflt(d *desc, def any) *desc  { c := *d; c.presence = withDefault; c.def = def; return &c }
func paramsOf(fs ...field) *desc   { return single(fs...) }
func invalidParam(debug string) *wsError {
	return &wsError{Exception: exInvalidParameter, ErrorCode: "invalidparameter",
		Message: "Invalid parameter value detected", DebugInfo: debug}
}

var (
	intRE         = regexp.MustCompile(`^-?[0-9]+$`)
	alphaRE       = regexp.MustCompile(`^[a-zA-Z]*$`)
	alphaNumExtRE = regexp.MustCompile(`^[a-zA-Z0-9_-]*$`)
	pluginRE      = regexp.MustCompile(`^([a-z][a-z0-9_]*)?$`)
	usernameBadRE = regexp.MustCompile(`[^-.@_a-z0-9]`)
	emailRE       = regexp.MustCompile(`^[a-zA-Z0-9.!#$%&'*+/=?^_{|}~-]+@([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`)
	tagRE         = regexp.MustCompile(`<[^>]*>`)
)

// validate mirrors external_api::validate_parameters: scalars cleaned by
// type (a value that cleaning would change is refused), structures checked
// for missing and unexpected keys, lists taken in arrival order.
func validate(d *desc, n *node, path string, extendedUsernames bool) (any, *wsError) {
	at := func(msg string) *wsError {
		if path != "" {
			msg = path + " => " + msg
		}
		return invalidParam(msg)
	}
	switch d.kind {
	case kValue:
		if !n.leaf {
			return nil, at("Scalar type expected, array or object received.")
		}
		v := n.value
		bad := func() (any, *wsError) {
			return nil, at(fmt.Sprintf("Invalid external api parameter: the value is %q, the server was expecting %q type", v, ptypeNames[d.typ]))
		}
		switch d.typ {
		case pInt:
			if !intRE.MatchString(v) {
				return bad()
			}
			i, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad()
			}
			return i, nil
		case pBool:
			switch strings.ToLower(v) {
			case "1", "true":
				return true, nil
			case "0", "false", "":
				return false, nil
			}
			return bad()
		case pUsername:
			// clean_param(PARAM_USERNAME): trimmed, lower case, and
			// without $CFG->extendedusernamechars only [-.@_a-z0-9].
			c := strings.ToLower(strings.TrimSpace(v))
			if !extendedUsernames {
				c = usernameBadRE.ReplaceAllString(c, "")
			}
			if c != v {
				return bad()
			}
		case pEmail:
			if v != "" && !emailRE.MatchString(v) {
				return bad()
			}
		case pNoTags, pText:
			if tagRE.MatchString(v) {
				return bad()
			}
		case pAlpha:
			if !alphaRE.MatchString(v) {
				return bad()
			}
		case pAlphaNumExt:
			if !alphaNumExtRE.MatchString(v) {
				return bad()
			}
		case pPlugin:
			if !pluginRE.MatchString(v) {
				return bad()
			}
		}
		return v, nil
	case kSingle:
		if n.leaf {
			return nil, at(fmt.Sprintf("Only arrays accepted. The bad value is: '%s'", n.value))
		}
		out := map[string]any{}
		known := map[string]bool{}
		for _, fd := range d.fields {
			known[fd.name] = true
			child, ok := n.kids[fd.name]
			if !ok {
				switch fd.d.presence {
				case required:
					return nil, at("Missing required key in single structure: " + fd.name)
				case withDefault:
					out[fd.name] = fd.d.def
				}
				continue
			}
			p := fd.name
			if path != "" {
				p = path + " => " + fd.name
			}
			v, err := validate(fd.d, child, p, extendedUsernames)
			if err != nil {
				return nil, err
			}
			out[fd.name] = v
		}
		var unexpected []string
		for _, k := range n.keys {
			if !known[k] {
				unexpected = append(unexpected, k)
			}
		}
		if len(unexpected) > 0 {
			sort.Strings(unexpected)
			return nil, at("Unexpected keys (" + strings.Join(unexpected, ", ") + ") detected in parameter array.")
		}
		return out, nil
	default:
		if n.leaf {
			return nil, at(fmt.Sprintf("Only arrays accepted. The bad value is: '%s'", n.value))
		}
		out := make([]any, 0, len(n.keys))
		for _, k := range n.keys {
			p := k
			if path != "" {
				p = path + " => " + k
			}
			v, err := validate(d.elem, n.kids[k], p, extendedUsernames)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
}
