package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bcloud-dev/bcloud/internal/compress"
)

// positional checks the number of positional arguments with barman's
// usage exit code.
func positional(min, max int, names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < min {
			return withCode(ExitUsage, fmt.Errorf("missing arguments: need %s", strings.Join(names[len(args):min], " ")))
		}
		if len(args) > max {
			return withCode(ExitUsage, fmt.Errorf("unexpected arguments: %s", strings.Join(args[max:], " ")))
		}
		return nil
	}
}

// compression holds the mutually exclusive codec flags of wal-archive.
type compression struct {
	gzip, bzip2, xz, snappy, zstd, lz4 bool
	level                              string
}

func (c *compression) register(fs *pflag.FlagSet) {
	fs.BoolVarP(&c.gzip, "gzip", "z", false, "gzip-compress the WAL while uploading to the cloud")
	fs.BoolVarP(&c.bzip2, "bzip2", "j", false, "bzip2-compress the WAL while uploading to the cloud")
	fs.BoolVar(&c.xz, "xz", false, "xz-compress the WAL while uploading to the cloud")
	fs.BoolVar(&c.snappy, "snappy", false, "snappy-compress the WAL while uploading to the cloud")
	fs.BoolVar(&c.zstd, "zstd", false, "zstd-compress the WAL while uploading to the cloud")
	fs.BoolVar(&c.lz4, "lz4", false, "lz4-compress the WAL while uploading to the cloud")
	fs.StringVar(&c.level, "compression-level", "", "compression level: low, medium, high or an integer (default: medium)")
}

func (c *compression) algorithm() (compress.Algorithm, compress.Level, error) {
	var chosen []compress.Algorithm
	for a, on := range map[compress.Algorithm]bool{
		compress.Gzip: c.gzip, compress.Bzip2: c.bzip2, compress.XZ: c.xz,
		compress.Snappy: c.snappy, compress.Zstd: c.zstd, compress.LZ4: c.lz4,
	} {
		if on {
			chosen = append(chosen, a)
		}
	}
	if len(chosen) > 1 {
		return "", compress.Level{}, withCode(ExitUsage, fmt.Errorf("compression options %v are mutually exclusive: choose one", chosen))
	}
	lvl, err := compress.ParseLevel(c.level)
	if err != nil {
		return "", compress.Level{}, withCode(ExitUsage, err)
	}
	if len(chosen) == 0 {
		return compress.None, lvl, nil
	}
	return chosen[0], lvl, nil
}

// tagFlags holds --tags (deprecated, "k,v" items) and --tag k,v.
type tagFlags struct {
	tags []string
	tag  []string
}

func (t *tagFlags) register(fs *pflag.FlagSet, name, help string) {
	fs.StringSliceVar(&t.tags, name+"s", nil, help+" (deprecated form: --"+name+"s k1,v1 k2,v2 is not supported; repeat --"+name+"s k,v)")
	fs.StringArrayVar(&t.tag, name, nil, help+", as KEY,VALUE (repeatable)")
}

// parse validates tags as barman's parse_tag does.
func (t *tagFlags) parse() (map[string]string, error) {
	items := append([]string{}, t.tag...)
	// pflag splits --tags a,b on commas: rejoin pairs.
	for i := 0; i+1 < len(t.tags); i += 2 {
		items = append(items, t.tags[i]+","+t.tags[i+1])
	}
	if len(t.tags)%2 == 1 {
		return nil, withCode(ExitUsage, fmt.Errorf("tag %q has no value: use KEY,VALUE", t.tags[len(t.tags)-1]))
	}
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, it := range items {
		k, v, ok := strings.Cut(it, ",")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, withCode(ExitUsage, fmt.Errorf("tag %q is not KEY,VALUE", it))
		}
		if len(k) > 128 || strings.HasPrefix(k, "aws:") || len(v) > 256 || !tagChars(k) || !tagChars(v) {
			return nil, withCode(ExitUsage, fmt.Errorf("tag %q is not valid: keys 1-128 characters not starting with aws:, values up to 256, characters letters, digits, spaces and _.:/=+-@", it))
		}
		out[k] = v
	}
	return out, nil
}

func tagChars(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(" \t_.:/=+-@", r):
		default:
			return false
		}
	}
	return true
}
