package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"strings"
)

// field is one property of a JSON object body.
type field struct {
	name     string
	kind     string // "string" or "strings" (array of strings)
	required bool
	email    bool // a string that must be an email address
	nonEmpty bool // a string that must not be empty
}

// body is a decoded object: strings and string arrays by property name.
type body struct {
	strs   map[string]string
	arrays map[string][]string
	has    map[string]bool
}

const schemaPrefix = "The request payload you provided doesn't conform to the schema. "

func schemaError(msg, path string) *Error {
	return &Error{Status: http.StatusBadRequest, Name: NameValidation, Message: schemaPrefix + msg,
		Details: []Detail{{Message: msg, Path: path}}}
}

// readObject enforces the JSON content type and the body limit, then
// decodes a JSON object holding exactly the given fields. Its errors are
// ready for the client: 415, 413 or 400 ValidationError.
func (h *Handler) readObject(w http.ResponseWriter, r *http.Request, fields []field) (*body, *Error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		ct := r.Header.Get("Content-Type")
		if len(ct) > 100 {
			ct = ct[:100] + "..."
		}
		if strings.TrimSpace(ct) == "" {
			ct = "none: the request has no Content-Type header"
		}
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Name: NameContentType,
			Message: fmt.Sprintf("We do not accept the content-type you provided (%s). Try using one of the content-types we do accept instead (application/json) and make sure the body is in the corresponding format.", ct)}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Error{Status: http.StatusRequestEntityTooLarge, Name: NamePayloadTooLarge,
				Message: fmt.Sprintf("The request body is larger than the limit of %d bytes.", h.opts.MaxBodyBytes)}
		}
		return nil, &Error{Status: http.StatusBadRequest, Name: NameBadData, Message: "The request body could not be read."}
	}
	return decodeObject(raw, fields)
}

// decodeObject parses raw as one JSON object with exactly the given fields:
// no duplicates, no others, each of the right type.
func decodeObject(raw []byte, fields []field) (*body, *Error) {
	// A UTF-8 byte order mark before the JSON is allowed (RFC 8259 lets a
	// parser ignore it; Windows tools write one).
	raw = bytes.TrimPrefix(raw, []byte("\xEF\xBB\xBF"))
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, schemaError("The body is empty; it should be an object.", "")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, schemaError("The body is not valid JSON.", "")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, schemaError(fmt.Sprintf("The body should be object. You sent %s.", jsonKind(tok)), "")
	}
	b := &body{strs: map[string]string{}, arrays: map[string][]string{}, has: map[string]bool{}}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, schemaError("The body is not valid JSON.", "")
		}
		key, _ := kt.(string)
		var f *field
		for i := range fields {
			if fields[i].name == key {
				f = &fields[i]
			}
		}
		if f == nil {
			return nil, schemaError(fmt.Sprintf("The body has an additional property %q, which is not allowed.", truncate(key, 64)), "."+truncate(key, 64))
		}
		if b.has[key] {
			return nil, schemaError(fmt.Sprintf("The .%s property appears more than once.", key), "."+key)
		}
		b.has[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, schemaError("The body is not valid JSON.", "")
		}
		if e := b.set(f, v); e != nil {
			return nil, e
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, schemaError("The body is not valid JSON.", "")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, schemaError("The body holds more than one JSON value.", "")
	}
	for _, f := range fields {
		if f.required && !b.has[f.name] {
			return nil, schemaError(fmt.Sprintf("The body must have required property '%s'.", f.name), "."+f.name)
		}
	}
	return b, nil
}

func (b *body) set(f *field, v json.RawMessage) *Error {
	path := "." + f.name
	switch f.kind {
	case "strings":
		var arr []any
		if err := json.Unmarshal(v, &arr); err != nil || arr == nil {
			return schemaError(fmt.Sprintf("The %s property should be array. You sent %s.", path, describe(v)), path)
		}
		out := make([]string, 0, len(arr))
		for _, x := range arr {
			s, ok := x.(string)
			if !ok {
				return schemaError(fmt.Sprintf("The %s property should be an array of strings.", path), path)
			}
			out = append(out, s)
		}
		b.arrays[f.name] = out
	default:
		var s string
		if v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return schemaError(fmt.Sprintf("The %s property should be string. You sent %s.", path, describe(v)), path)
		}
		if (f.nonEmpty || f.email) && s == "" {
			return schemaError(fmt.Sprintf("The %s property must not be empty.", path), path)
		}
		if f.email && len(s) > maxEmailLen {
			return schemaError(fmt.Sprintf("The %s property is too long (%d bytes); an email address has at most %d.", path, len(s), maxEmailLen), path)
		}
		if f.email && !validEmail(s) {
			return schemaError(fmt.Sprintf("The %s property must be an email address.", path), path)
		}
		b.strs[f.name] = s
	}
	return nil
}

// maxEmailLen is the longest address (RFC 5321's path limit, less the
// brackets).
const maxEmailLen = 254

// validEmail accepts a bare address (no display name, no angle brackets)
// of at most 254 bytes.
func validEmail(s string) bool {
	if len(s) > maxEmailLen || strings.ContainsAny(s, " <>\r\n\t") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

// describe names a JSON value for a message, briefly and without echoing
// long input.
func describe(v json.RawMessage) string {
	s := strings.TrimSpace(string(v))
	if len(s) > 32 {
		return jsonKindOf(s[0])
	}
	return s
}

func jsonKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return string(t)
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "something else"
}

func jsonKindOf(c byte) string {
	switch c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	}
	return "a value"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
