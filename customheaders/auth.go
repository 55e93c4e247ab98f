package customheaders

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// Endpoint authentication: credentials hookd presents to a receiver on
// every attempt. A credential becomes one request header (Authorization
// for bearer and basic, a header of the user's choice otherwise) that is
// sealed together with the endpoint's custom headers, so it is encrypted
// at rest, re-sealed by master-key rotation and redacted in attempt
// records like them; the endpoint row keeps only its type, the header's
// name and a hint.

// Authentication types.
const (
	AuthBearer = "bearer"
	AuthBasic  = "basic"
	AuthHeader = "header"
	AuthNone   = "none" // in a PATCH: remove the credential
)

// Limits of a credential.
const (
	MaxCredential = 4096 // token, password or header value, in bytes
	MaxUsername   = 255
	minHinted     = 12 // shorter credentials get no hint
)

// Auth is a credential as the API takes it.
type Auth struct {
	Type                    string
	Token                   string
	Username, Password      string
	HeaderName, HeaderValue string
}

// AuthError is a credential in the wrong shape; Field is the JSON pointer
// of the offending member.
type AuthError struct {
	Field, Message string
}

func (e *AuthError) Error() string { return "auth: " + e.Message }

func authErr(field, format string, args ...any) error {
	return &AuthError{Field: "/auth/" + field, Message: fmt.Sprintf(format, args...)}
}

// Credential checks a and returns the header that carries it and a hint
// for display: "…" and the last 4 characters of the secret part when it is
// at least 12 characters long, else "". Type none returns "" for all.
func Credential(a Auth) (name, value, hint string, err error) {
	given := map[string]bool{"token": a.Token != "", "username": a.Username != "", "password": a.Password != "",
		"header_name": a.HeaderName != "", "header_value": a.HeaderValue != ""}
	var wants []string
	switch a.Type {
	case AuthBearer:
		wants = []string{"token"}
	case AuthBasic:
		wants = []string{"username", "password"}
	case AuthHeader:
		wants = []string{"header_name", "header_value"}
	case AuthNone:
	default:
		return "", "", "", authErr("type", "type must be bearer, basic, header or none, got %q", a.Type)
	}
	for _, f := range []string{"token", "username", "password", "header_name", "header_value"} {
		want := false
		for _, w := range wants {
			want = want || w == f
		}
		switch {
		case want && !given[f]:
			return "", "", "", authErr(f, "%s is required with type %s", f, a.Type)
		case !want && given[f]:
			return "", "", "", authErr(f, "%s is not used with type %s", f, a.Type)
		}
	}
	secretValue := func(field, v string) error {
		switch {
		case len(v) > MaxCredential:
			return authErr(field, "%s is longer than %d bytes", field, MaxCredential)
		case !utf8.ValidString(v) || !httpguts.ValidHeaderFieldValue(v):
			return authErr(field, "%s holds a control character", field)
		case strings.TrimSpace(v) != v:
			return authErr(field, "%s starts or ends with white space", field)
		}
		return nil
	}
	switch a.Type {
	case AuthBearer:
		if err := secretValue("token", a.Token); err != nil {
			return "", "", "", err
		}
		return "Authorization", "Bearer " + a.Token, hintOf(a.Token), nil
	case AuthBasic:
		switch {
		case len(a.Username) > MaxUsername:
			return "", "", "", authErr("username", "username is longer than %d bytes", MaxUsername)
		case strings.Contains(a.Username, ":"):
			return "", "", "", authErr("username", "username cannot hold a colon (basic authentication separates it from the password with one)")
		}
		if err := secretValue("username", a.Username); err != nil {
			return "", "", "", err
		}
		if err := secretValue("password", a.Password); err != nil {
			return "", "", "", err
		}
		return "Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)), hintOf(a.Password), nil
	case AuthHeader:
		lower := strings.ToLower(a.HeaderName)
		switch {
		case !httpguts.ValidHeaderFieldName(a.HeaderName):
			return "", "", "", authErr("header_name", "%q is not a valid header name", a.HeaderName)
		case lower != "authorization" && forbidden[lower]:
			return "", "", "", authErr("header_name", "header %q is set by hookd and cannot carry a credential", a.HeaderName)
		}
		for _, p := range forbiddenPrefixes {
			if strings.HasPrefix(lower, p) {
				return "", "", "", authErr("header_name", "headers starting with %q are reserved", p)
			}
		}
		if err := secretValue("header_value", a.HeaderValue); err != nil {
			return "", "", "", err
		}
		return a.HeaderName, a.HeaderValue, hintOf(a.HeaderValue), nil
	}
	return "", "", "", nil // none
}

func hintOf(secret string) string {
	r := []rune(secret)
	if len(r) < minHinted {
		return ""
	}
	return "…" + string(r[len(r)-4:])
}

// SplitAuth separates an endpoint's sealed header map into its custom
// headers and the value of its credential header authName (compared
// case-insensitively; "" when the endpoint has no credential).
func SplitAuth(all map[string]string, authName string) (custom map[string]string, authValue string) {
	custom = make(map[string]string, len(all))
	for k, v := range all {
		if authName != "" && strings.EqualFold(k, authName) {
			authValue = v
			continue
		}
		custom[k] = v
	}
	return custom, authValue
}

// JoinAuth returns the map to seal: the custom headers and the credential
// header, or an AuthError when a custom header has the credential's name.
func JoinAuth(custom map[string]string, authName, authValue string) (map[string]string, error) {
	all := make(map[string]string, len(custom)+1)
	for k, v := range custom {
		if authName != "" && strings.EqualFold(k, authName) {
			return nil, &AuthError{Field: "/headers", Message: fmt.Sprintf("custom header %q is the endpoint's credential header; remove one of them", k)}
		}
		all[k] = v
	}
	if authName != "" {
		all[authName] = authValue
	}
	return all, nil
}
