package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzExtract feeds arbitrary bytes to the tar extractor: it must end in
// files or an error, never a panic, and never create anything outside its
// root, whatever names, links and types the archive claims.
func FuzzExtract(f *testing.F) {
	seed := func(entries []entry) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range entries {
			h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o600, Linkname: e.link, Format: tar.FormatPAX}
			if h.Typeflag == 0 {
				h.Typeflag = tar.TypeReg
				h.Size = int64(len(e.body))
			}
			_ = tw.WriteHeader(h)
			_, _ = tw.Write([]byte(e.body))
		}
		_ = tw.Close()
		return buf.Bytes()
	}
	f.Add(seed([]entry{{name: "./PG_VERSION", body: "15\n"}, {name: "base/1/1259", body: "x"}}))
	f.Add(seed([]entry{{name: "../escape", body: "x"}}))
	f.Add(seed([]entry{{name: "link", typ: tar.TypeSymlink, link: "/tmp"}, {name: "link/file", body: "x"}}))
	f.Add(seed([]entry{{name: "hard", typ: tar.TypeLink, link: "../../etc/passwd"}}))
	f.Add(seed([]entry{{name: "dir", typ: tar.TypeDir}, {name: "dir/a", body: "y"}}))
	f.Add([]byte("not a tar at all"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
		x := newExtractor(root)
		_ = x.extract(context.Background(), bytes.NewReader(data), make([]byte, 4096), func(int64) {})
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "root" {
				t.Fatalf("extraction created %q outside its root", e.Name())
			}
		}
	})
}
