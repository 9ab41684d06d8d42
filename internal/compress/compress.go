// Package compress holds the codecs of barman-cloud: the six WAL
// compressions (gzip, bzip2, xz, snappy, zstd, lz4) and the base-backup
// archive compressions, byte-compatible in both directions with the Python
// readers and writers barman uses (barman/clients/cloud_compression.py,
// barman/compression.py).
//
// Writers emit exactly what the Python readers accept: one gzip member, one
// bzip2 stream, one xz stream (CRC64 check), the snappy framing format with
// its stream identifier, one zstd frame with a content checksum, and one LZ4
// frame with a content checksum. Readers accept everything the Python
// writers emit and more (multi-member gzip, multi-frame zstd, concatenated
// bzip2/xz/lz4 streams), and report truncated or corrupted input as an
// error instead of a silent short read.
package compress

import (
	"fmt"
	"strings"
)

// Algorithm names a compression, spelled as barman-cloud's flags and the
// ObjectStore `compression` field spell it. The zero value is None.
type Algorithm string

// The algorithms barman-cloud knows.
const (
	None   Algorithm = ""
	Gzip   Algorithm = "gzip"
	Bzip2  Algorithm = "bzip2"
	XZ     Algorithm = "xz"
	Snappy Algorithm = "snappy"
	Zstd   Algorithm = "zstd"
	LZ4    Algorithm = "lz4"
)

// Algorithms lists every compressing algorithm (None excluded) in barman's
// ALLOWED_COMPRESSIONS order: gzip, bzip2, xz, snappy, zstd, lz4.
func Algorithms() []Algorithm {
	return []Algorithm{Gzip, Bzip2, XZ, Snappy, Zstd, LZ4}
}

// walSuffixes is barman/cloud.py ALLOWED_COMPRESSIONS, in its order.
var walSuffixes = [...]struct {
	suffix string
	algo   Algorithm
}{
	{".gz", Gzip},
	{".bz2", Bzip2},
	{".xz", XZ},
	{".snappy", Snappy},
	{".zst", Zstd},
	{".lz4", LZ4},
}

// Parse turns a flag or ObjectStore value into an Algorithm. The empty
// string is None; anything else must be one of the six names exactly.
func Parse(s string) (Algorithm, error) {
	if s == "" {
		return None, nil
	}
	for _, a := range Algorithms() {
		if s == string(a) {
			return a, nil
		}
	}
	return None, fmt.Errorf("parse compression %q: unknown algorithm, valid values are %s, or empty for none",
		s, validNames())
}

func validNames() string {
	names := make([]string, 0, len(walSuffixes))
	for _, a := range Algorithms() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// String returns the algorithm name, or "none" for None.
func (a Algorithm) String() string {
	if a == None {
		return "none"
	}
	return string(a)
}

// Valid reports whether a is None or one of the six algorithms.
func (a Algorithm) Valid() bool {
	if a == None {
		return true
	}
	for _, s := range walSuffixes {
		if s.algo == a {
			return true
		}
	}
	return false
}

// WALSuffix returns the suffix barman-cloud-wal-archive appends to a WAL
// object name: ".gz", ".bz2", ".xz", ".snappy", ".zst" or ".lz4"; "" for
// None or an unknown algorithm.
func (a Algorithm) WALSuffix() string {
	for _, s := range walSuffixes {
		if s.algo == a {
			return s.suffix
		}
	}
	return ""
}

// TarSuffix returns the suffix appended after ".tar" to a base-backup
// archive name. It is the same as WALSuffix: barman-cloud-backup itself
// writes only ".gz", ".bz2" and ".snappy"; ".lz4", ".zst" and ".xz" exist
// for readers of newer barman versions.
func (a Algorithm) TarSuffix() string { return a.WALSuffix() }

// FromWALName finds the compression of a WAL object by its suffix, testing
// the suffixes in barman's ALLOWED_COMPRESSIONS order (.gz, .bz2, .xz,
// .snappy, .zst, .lz4), as CloudWalDownloader.download_wal does. It returns
// the algorithm and the name without the suffix, or None and the name
// unchanged when no suffix matches. Only one suffix is stripped.
func FromWALName(name string) (Algorithm, string) {
	for _, s := range walSuffixes {
		if base, ok := strings.CutSuffix(name, s.suffix); ok {
			return s.algo, base
		}
	}
	return None, name
}

// FromTarName reports whether name is a base-backup archive ("...tar" or
// "...tar<suffix>") and with which compression: "data.tar.gz" is Gzip,
// "data_0001.tar" is None, "x.zip" is not an archive. Like barman-cloud-
// restore, the compression comes from the last extension only.
func FromTarName(name string) (Algorithm, bool) {
	if strings.HasSuffix(name, ".tar") {
		return None, true
	}
	a, base := FromWALName(name)
	if a == None || !strings.HasSuffix(base, ".tar") {
		return None, false
	}
	return a, true
}
