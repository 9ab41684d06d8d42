package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
)

// baseEnv is the environment every harness process starts from: like a
// container's, it does not inherit the test's (credentials, KUBECONFIG).
func baseEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp", "LANG=C.UTF-8"}
}

// freeTCPPort returns a port on 127.0.0.1 that was free a moment ago.
func freeTCPPort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// logContains reports whether the file holds s.
func logContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(s))
}

// yamlRoundTrip re-encodes a decoded document as JSON.
func yamlRoundTrip(doc map[string]any) ([]byte, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode document: %w", err)
	}
	return b, nil
}

// decodeInto decodes JSON into v.
func decodeInto(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}
