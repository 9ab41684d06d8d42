package storage

// Secret holds a credential. Its String and GoString methods never reveal
// the value, so a config printed with %v or %#v, or logged, stays safe.
// Use Reveal only where the value is handed to a provider SDK.
type Secret string

const redacted = "**redacted**"

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return s.String() }

// MarshalText keeps secrets out of JSON and text encodings too.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }
