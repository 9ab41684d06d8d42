//go:build bench

package bench

import (
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// pgBackRest is a pgBackRest configuration for one stanza whose repository
// is an S3 bucket of the benchmark's versitygw.
type pgBackRest struct {
	bin    string
	conf   string
	stanza string
}

// newPgBackRest writes a configuration for the stanza "bench" on the data
// directory of pg with its repository at s3://bucket/repo, and runs
// stanza-create (which needs the server running). Keys come from the
// environment (store.env). Extra global options are added as given.
func newPgBackRest(t testing.TB, r runner, st *store, bucket string, pg *testenv.PG, extra map[string]string) pgBackRest {
	t.Helper()
	bin := testenv.Tool(t, "pgbackrest")
	if addrs, err := net.LookupHost("localhost"); err != nil || len(addrs) == 0 || addrs[0] != st.host {
		t.Fatalf("localhost resolves to %v (%v), not to %s where versitygw listens", addrs, err, st.host)
	}
	dir := filepath.Join(r.dir, "pgbackrest-"+bucket)
	for _, d := range []string{"log", "lock", "spool"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	b.WriteString("[global]\n")
	global := map[string]string{
		"repo1-type":      "s3",
		"repo1-path":      "/repo",
		"repo1-s3-bucket": bucket,
		// pgBackRest checks the certificate against host names only, not
		// IP addresses: the test certificate's name for 127.0.0.1 is
		// localhost (which resolves to 127.0.0.1 only, checked below).
		"repo1-s3-endpoint":         "localhost",
		"repo1-storage-port":        st.port,
		"repo1-s3-region":           st.srv.Region,
		"repo1-s3-uri-style":        "path",
		"repo1-storage-ca-file":     st.caFile,
		"log-path":                  filepath.Join(dir, "log"),
		"lock-path":                 filepath.Join(dir, "lock"),
		"spool-path":                filepath.Join(dir, "spool"),
		"log-level-console":         "warn",
		"log-level-stderr":          "warn",
		"log-level-file":            "off",
		"start-fast":                "y",
		"archive-check":             "n",
		"repo1-retention-full":      "9",
		"repo1-retention-full-type": "count",
	}
	for k, v := range extra {
		global[k] = v
	}
	for _, k := range sortedKeys(global) {
		fmt.Fprintf(&b, "%s=%s\n", k, global[k])
	}
	fmt.Fprintf(&b, "\n[bench]\npg1-path=%s\npg1-socket-path=%s\npg1-port=%d\npg1-user=postgres\n",
		pg.DataDir, pg.SocketDir, pg.Port)
	conf := filepath.Join(dir, "pgbackrest.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, uid, gid := pgCredential(t)
	chownAll(t, dir, uid, gid)
	p := pgBackRest{bin: bin, conf: conf, stanza: "bench"}
	r.must(t, bin, p.args("stanza-create")...)
	return p
}

// args returns the command line of a pgBackRest command followed by its
// options and parameters.
func (p pgBackRest) args(command string, rest ...string) []string {
	return append([]string{"--config=" + p.conf, "--stanza=" + p.stanza, command}, rest...)
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
