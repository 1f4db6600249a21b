package apiutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ErrMalformedBody marks a body that is empty or not JSON (services whose
// API words that differently can recognise it with errors.Is).
var ErrMalformedBody = fmt.Errorf("malformed request body: %w", ErrBadRequest)

// MaxBodyBytes bounds JSON request bodies.
const MaxBodyBytes = 1 << 20

// Schema is a compiled JSON schema for a request body.
type Schema struct {
	s *jsonschema.Schema
}

// MustSchema compiles a JSON schema (draft 2020-12 by default) given as
// JSON text; it panics on a bad schema, which is a programming error.
func MustSchema(name, src string) *Schema {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(src))
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", name, err))
	}
	c := jsonschema.NewCompiler()
	url := "mem:///" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		panic(fmt.Sprintf("schema %s: %v", name, err))
	}
	s, err := c.Compile(url)
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", name, err))
	}
	return &Schema{s: s}
}

// Validate checks a decoded JSON document (from jsonschema.UnmarshalJSON
// or encoding/json with UseNumber) against the schema, returning a 400
// naming the offending field.
func (s *Schema) Validate(doc any) error {
	err := s.s.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return BadRequest("Invalid input: %v", err)
	}
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	field := strings.Join(leaf.InstanceLocation, "/")
	msg := leaf.Error()
	if i := strings.Index(msg, "': "); i >= 0 && strings.HasPrefix(msg, "at '") {
		msg = msg[i+3:]
	}
	msg = strings.TrimPrefix(msg, "jsonschema validation failed with ")
	if field == "" {
		return BadRequest("Invalid input for request body: %s", msg)
	}
	return BadRequest("Invalid input for field '%s': %s", field, msg)
}

// ReadBody reads a bounded request body.
func ReadBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, BadRequest("Could not read request body: %v", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, &Error{Status: 413, Message: "Request body too large.", Err: ErrOverLimit}
	}
	return b, nil
}

// DecodeJSON reads the request body, checks that it is well-formed JSON,
// validates it against schema (when not nil) and decodes it into v.
func DecodeJSON(r *http.Request, schema *Schema, v any) error {
	b, err := ReadBody(r)
	if err != nil {
		return err
	}
	return DecodeJSONBytes(b, schema, v)
}

// DecodeJSONBytes is DecodeJSON on a body already read.
func DecodeJSONBytes(b []byte, schema *Schema, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return &Error{Status: 400, Message: "The request body is empty; a JSON object was expected.", Err: ErrMalformedBody}
	}
	if schema != nil {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return &Error{Status: 400, Message: "Malformed request body: " + cleanJSONError(err), Err: ErrMalformedBody}
		}
		if err := schema.Validate(doc); err != nil {
			return err
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &Error{Status: 400, Message: "Malformed request body: " + cleanJSONError(err), Err: ErrMalformedBody}
	}
	return nil
}

func cleanJSONError(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}
