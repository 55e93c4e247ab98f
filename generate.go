// Package hookd holds the API contract (openapi.yaml) and the directive that
// turns it into the gen package.
package hookd

import _ "embed"

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config oapi-codegen.yaml openapi.yaml

// SpecYAML is openapi.yaml exactly as written, served at /openapi.yaml.
//
//go:embed openapi.yaml
var SpecYAML []byte
