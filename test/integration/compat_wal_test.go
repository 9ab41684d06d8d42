package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/all"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// barmanTool returns the path of a real barman-cloud 3.4 command.
func barmanTool(t *testing.T, cmd string) string {
	t.Helper()
	return testenv.Tool(t, "barman-cloud-"+cmd)
}

// s3Env is the environment both tools read S3 credentials from.
func s3Env(srv testenv.S3Server) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.Secret,
		"AWS_DEFAULT_REGION=" + srv.Region, "AWS_REQUEST_CHECKSUM_CALCULATION=when_required",
		"AWS_RESPONSE_CHECKSUM_VALIDATION=when_required",
	}
}

// walContent is 16 MiB shaped like WAL segment 00000001000000000000000A:
// a first page header with its address, random records among zero pages.
func walContent() []byte {
	data := make([]byte, 16<<20)
	for off := 0; off < len(data); off += 8192 {
		n := 1024 + (off/8192)%4096
		_, _ = rand.Read(data[off : off+n])
	}
	binary.LittleEndian.PutUint16(data[0:2], 0xD110)
	binary.LittleEndian.PutUint32(data[4:8], 1)
	binary.LittleEndian.PutUint64(data[8:16], 0xA<<24)
	return data
}

// compatTarget is one store both tools can reach.
type compatTarget struct {
	name  string
	env   []string
	flags []string                                         // connection flags both tools take
	dest  func(t *testing.T) string                        // a fresh destination URL
	keys  func(t *testing.T, dest, server string) []string // object keys under <dest>/<server>/
}

func compatTargets(t *testing.T) []compatTarget {
	srv := testenv.VersityGW(t)
	az := testenv.Azurite(t)
	return []compatTarget{
		{
			name: "s3", env: s3Env(srv), flags: []string{"--endpoint-url", srv.Endpoint},
			dest: func(t *testing.T) string { return "s3://" + srv.NewBucket(t) + "/compat" },
			keys: func(t *testing.T, dest, server string) []string { return bucketKeys(t, openS3(t, srv, dest), server) },
		},
		{
			name: "azure", env: []string{"AZURE_STORAGE_CONNECTION_STRING=" + az.ConnectionString},
			flags: []string{"--cloud-provider", "azure-blob-storage"},
			dest:  func(t *testing.T) string { return az.Endpoint + "/" + az.NewContainer(t) + "/compat" },
			keys: func(t *testing.T, dest, server string) []string {
				return bucketKeys(t, openWithEnv(t, dest, config.Options{Provider: config.ProviderAzure},
					map[string]string{"AZURE_STORAGE_CONNECTION_STRING": az.ConnectionString}), server)
			},
		},
	}
}

// TestWALCompatWithBarmanCloud: WAL archived by bcloud restores with the
// real barman-cloud-wal-restore 3.4 byte-identical, and the reverse, for
// every codec barman-cloud 3.4 has, on S3 (versitygw) and Azure
// (Azurite). barman-cloud 3.4's snappy module fails to load on Debian 12,
// so snappy is covered by the codec tests against Python's snappy module;
// Debian has no Python GCS client, so GCS is covered by bcloud's own tests.
func TestWALCompatWithBarmanCloud(t *testing.T) {
	bin := bcloudBin(t)
	barmanArchive := barmanTool(t, "wal-archive")
	barmanRestore := barmanTool(t, "wal-restore")
	dir := t.TempDir()
	segment := walContent()
	history := []byte("1\t0/5000000\tno recovery target specified\n")
	for _, tg := range compatTargets(t) {
		for _, codec := range []struct{ flag, name string }{{"", "none"}, {"--gzip", "gzip"}, {"--bzip2", "bzip2"}} {
			t.Run(tg.name+"/"+codec.name, func(t *testing.T) {
				dest := tg.dest(t)
				env := tg.env
				files := map[string][]byte{
					"00000001000000000000000A":                 segment,
					"00000002.history":                         history,
					"00000001000000000000000B.00000028.backup": []byte("START WAL LOCATION: 0/B000028\n"),
				}
				common := tg.flags
				if codec.flag != "" {
					common = append([]string{codec.flag}, common...)
				}
				for name, data := range files {
					p := filepath.Join(dir, name)
					if err := os.WriteFile(p, data, 0o600); err != nil {
						t.Fatal(err)
					}
					// bcloud archives under server "ours", barman-cloud under "theirs".
					run(t, env, bin, append(append([]string{"wal-archive"}, common...), dest, "ours", p)...)
					run(t, env, barmanArchive, append(append([]string{}, common...), dest, "theirs", p)...)
				}
				for _, name := range []string{"00000001000000000000000A", "00000002.history"} {
					out := filepath.Join(dir, "by-barman-"+name)
					run(t, env, barmanRestore, append(append([]string{}, tg.flags...), dest, "ours", name, out)...)
					assertSameFile(t, out, files[name], "barman-cloud-wal-restore of bcloud's "+name)
					out = filepath.Join(dir, "by-bcloud-"+name)
					run(t, env, bin, append(append([]string{"wal-restore"}, tg.flags...), dest, "theirs", name, out)...)
					assertSameFile(t, out, files[name], "bcloud wal-restore of barman-cloud's "+name)
				}
				ours, theirs := tg.keys(t, dest, "ours"), tg.keys(t, dest, "theirs")
				if fmt.Sprint(ours) != fmt.Sprint(theirs) {
					t.Fatalf("object keys differ:\nbcloud:       %v\nbarman-cloud: %v", ours, theirs)
				}
				missing := filepath.Join(dir, "x")
				code, _ := exitCode(t, env, barmanRestore, append(append([]string{}, tg.flags...), dest, "ours", "00000001000000000000000F", missing)...)
				ourCode, _ := exitCode(t, env, bin, append(append([]string{"wal-restore"}, tg.flags...), dest, "ours", "00000001000000000000000F", missing)...)
				if code != 1 || ourCode != 1 {
					t.Fatalf("missing WAL: barman-cloud exit %d, bcloud exit %d, want 1 and 1", code, ourCode)
				}
			})
		}
	}
}

func assertSameFile(t *testing.T, path string, want []byte, what string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, differs from the %d archived", what, len(got), len(want))
	}
}

// listKeys lists the keys under <dest>/<server>/ of an S3 destination.
func listKeys(t *testing.T, srv testenv.S3Server, dest, server string) []string {
	return bucketKeys(t, openS3(t, srv, dest), server)
}

// bucketKeys lists the keys under <server>/, without that prefix.
func bucketKeys(t *testing.T, b storage.Bucket, server string) []string {
	t.Helper()
	var keys []string
	err := b.List(t.Context(), server+"/", func(o storage.ObjectInfo) error {
		keys = append(keys, strings.TrimPrefix(o.Key, server+"/"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// openS3 opens dest on the versitygw server as bcloud would.
func openS3(t *testing.T, srv testenv.S3Server, dest string) storage.Bucket {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range s3Env(srv) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return openWithEnv(t, dest, config.Options{EndpointURL: srv.Endpoint}, vars)
}

// openWithEnv opens dest as bcloud would with the given environment.
func openWithEnv(t *testing.T, dest string, opts config.Options, vars map[string]string) storage.Bucket {
	t.Helper()
	st, err := config.FromEnv(dest, opts, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	b, err := all.Open(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
