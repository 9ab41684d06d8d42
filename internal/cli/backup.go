package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/bcloud-dev/bcloud/internal/backup"
	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/postgres"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/all"
)

// maxBackupTags is barman-cloud-backup's limit on --tag.
const maxBackupTags = 10

func newBackup() *cobra.Command {
	var (
		c                                       common
		comp                                    compression
		host, user, dbname                      string
		port                                    int
		immediate                               bool
		jobs                                    int
		maxArchiveSize, minChunkSize, bandwidth string
		name                                    string
		tags                                    tagFlags
		encryption, kmsKey, encScope, gcsKMSKey string
		snapshotInstance                        string
		snapshotDisks                           []string
	)
	cmd := &cobra.Command{
		Use:   "backup [options] DESTINATION_URL SERVER_NAME",
		Short: "Take an online base backup of PostgreSQL into cloud storage",
		Long: "Take an online base backup of a local PostgreSQL server straight into cloud storage, " +
			"in barman-cloud-backup's format. libpq environment variables (PGHOST, PGPORT, PGUSER, " +
			"PGPASSWORD, PGSSLMODE...) and the password file are honoured.",
		Args: positional(2, 2, "DESTINATION_URL", "SERVER_NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := c.setupLogging(cmd.Context(), cmd.ErrOrStderr())
			dest, server := args[0], args[1]
			if err := validateServer(server); err != nil {
				return err
			}
			if snapshotInstance != "" || len(snapshotDisks) > 0 {
				return withCode(ExitUsage, errors.New("snapshot backups are not supported by bcloud: omit --snapshot-instance and --snapshot-disk"))
			}
			if err := exclusive(cmd, "tags", "tag"); err != nil {
				return err
			}
			algo, lvl, err := comp.algorithm()
			if err != nil {
				return err
			}
			if algo == compress.LZ4 && comp.level == "" {
				// lz4 is chosen for speed: its medium level is the slow
				// high-compression mode (3.5x slower measured on a 2 GiB
				// backup), so backups default to the fast one.
				lvl, _ = compress.ParseLevel("low")
			}
			if name != "" {
				if err := catalog.CheckBackupName(name); err != nil {
					return withCode(ExitUsage, fmt.Errorf("--name: %w", err))
				}
			}
			if jobs < 1 {
				return withCode(ExitUsage, fmt.Errorf("--jobs must be a positive integer, got %d", jobs))
			}
			maxSize, err := backup.ParseSize(maxArchiveSize)
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("--max-archive-size: %w", err))
			}
			var minChunk int64
			for _, s := range []struct {
				flag, v string
				out     *int64
			}{{"min-chunk-size", minChunkSize, &minChunk}, {"max-bandwidth", bandwidth, new(int64)}} {
				if s.v == "" {
					continue
				}
				if *s.out, err = backup.ParseSize(s.v); err != nil {
					return withCode(ExitUsage, fmt.Errorf("--%s: %w", s.flag, err))
				}
			}
			if bandwidth != "" {
				slog.WarnContext(ctx, "--max-bandwidth is accepted for compatibility and not enforced")
			}
			t, err := parseBackupTags(&tags)
			if err != nil {
				return err
			}
			switch encryption {
			case "", "AES256", "aws:kms":
			default:
				return withCode(ExitUsage, fmt.Errorf("--encryption %q: use AES256 or aws:kms", encryption))
			}
			portStr := ""
			if port != 0 {
				portStr = strconv.Itoa(port)
			}
			conninfo := postgres.BuildConnInfo(host, portStr, user, dbname)

			opts, err := c.options()
			if err != nil {
				return err
			}
			opts.Encryption, opts.SSEKMSKeyID, opts.EncryptionScope, opts.KMSKeyName = encryption, kmsKey, encScope, gcsKMSKey
			b, err := openUploadBucket(ctx, dest, opts)
			if err != nil {
				return err
			}
			defer b.Close()
			if err := connectivityTest(ctx, b, server); err != nil || c.test {
				return err
			}
			prog := newProgress("backup", cmd.ErrOrStderr(), c.quiet > 0)
			entry, err := backup.Take(ctx, backup.Options{
				Bucket: b, Server: server, ConnInfo: conninfo, Name: name,
				Compression: algo, Level: lvl, Jobs: jobs,
				MaxArchiveSize: maxSize, MinChunkSize: minChunk,
				ImmediateCheckpoint: immediate, Tags: t, Progress: prog,
			})
			prog.Finish(err == nil)
			switch {
			case errors.Is(err, backup.ErrConnect):
				return withCode(ExitFailed, err)
			case err != nil && entry.Info == nil:
				return withCode(ExitGeneral, err)
			case err != nil:
				return withCode(ExitFailed, err)
			}
			// barman-cloud-backup prints nothing on success.
			slog.InfoContext(ctx, "backup stored", "backupId", entry.ID, "serverName", server)
			return nil
		},
	}
	fs := cmd.Flags()
	c.register(fs)
	fs.BoolVarP(&comp.gzip, "gzip", "z", false, "gzip-compress the backup while uploading to the cloud")
	fs.BoolVarP(&comp.bzip2, "bzip2", "j", false, "bzip2-compress the backup while uploading to the cloud")
	fs.BoolVar(&comp.snappy, "snappy", false, "snappy-compress the backup while uploading to the cloud")
	fs.BoolVar(&comp.lz4, "lz4", false, "lz4-compress the backup (bcloud extension: barman-cloud-restore 3.4 cannot read it)")
	fs.BoolVar(&comp.zstd, "zstd", false, "zstd-compress the backup (bcloud extension: barman-cloud-restore 3.4 cannot read it)")
	fs.BoolVar(&comp.xz, "xz", false, "xz-compress the backup (bcloud extension: barman-cloud-restore 3.4 cannot read it)")
	fs.StringVar(&comp.level, "compression-level", "", "compression level: low, medium, high or an integer (default: medium, low for lz4; barman-cloud uses 9 for gzip and bzip2)")
	fs.StringVarP(&host, "host", "h", "", "host or Unix socket for PostgreSQL connection (default: libpq settings)")
	fs.IntVarP(&port, "port", "p", 0, "port for PostgreSQL connection (default: libpq settings)")
	fs.StringVarP(&user, "user", "U", "", "user name for PostgreSQL connection (default: libpq settings)")
	fs.StringVarP(&dbname, "dbname", "d", "postgres", "Database name or conninfo string for Postgres connection")
	fs.BoolVar(&immediate, "immediate-checkpoint", false, "forces the initial checkpoint to be done as quickly as possible")
	fs.IntVarP(&jobs, "jobs", "J", backup.DefaultJobs, "number of archive parts written and uploaded concurrently")
	fs.StringVarP(&maxArchiveSize, "max-archive-size", "S", "100GB", "maximum size of an archive when uploading to cloud storage")
	fs.StringVar(&minChunkSize, "min-chunk-size", "", "minimum size of an individual chunk when uploading to cloud storage (accepted for compatibility: bcloud sizes parts itself)")
	fs.StringVar(&bandwidth, "max-bandwidth", "", "the maximum amount of data to be uploaded per second (accepted for compatibility, not enforced)")
	fs.StringVarP(&name, "name", "n", "", "a name which can be used to reference this backup in commands such as barman-cloud-restore and barman-cloud-backup-delete")
	tags.register(fs, "tag", "tags to be added to all uploaded files in cloud storage")
	fs.StringVarP(&encryption, "encryption", "e", "", "the encryption algorithm used when storing the uploaded data in S3 (AES256, aws:kms)")
	fs.StringVar(&kmsKey, "sse-kms-key-id", "", "the AWS KMS key ID that should be used for encrypting the uploaded data in S3 (with --encryption aws:kms)")
	fs.StringVar(&encScope, "encryption-scope", "", "the name of an encryption scope defined in the Azure Blob Storage service")
	fs.StringVar(&gcsKMSKey, "kms-key-name", "", "the name of the GCP KMS key which should be used for encrypting the uploaded data in GCS")
	fs.StringVar(&snapshotInstance, "snapshot-instance", "", "not supported by bcloud")
	fs.StringArrayVar(&snapshotDisks, "snapshot-disk", nil, "not supported by bcloud")
	_ = fs.MarkHidden("snapshot-instance")
	_ = fs.MarkHidden("snapshot-disk")
	return cmd
}

// uploadConcurrency is the number of multipart parts each S3 archive
// upload keeps in flight: with --jobs uploads at once, memory stays near
// jobs x uploadConcurrency x part size.
const uploadConcurrency = 2

// openUploadBucket is openBucket with the S3 part concurrency of each
// upload reduced, since a backup runs --jobs uploads at once.
func openUploadBucket(ctx context.Context, dest string, opts config.Options) (storage.Bucket, error) {
	st, err := config.FromEnv(dest, opts, os.Getenv)
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	if st.Provider == config.ProviderS3 && st.S3.Concurrency == 0 {
		st.S3.Concurrency = uploadConcurrency
	}
	b, err := all.Open(ctx, st)
	if err != nil {
		return nil, withCode(ExitNetwork, err)
	}
	return b, nil
}

// exclusive fails with barman's usage exit code when more than one of the
// named flags is set.
func exclusive(cmd *cobra.Command, names ...string) error {
	var set []string
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			set = append(set, "--"+n)
		}
	}
	if len(set) > 1 {
		return withCode(ExitUsage, fmt.Errorf("options %s are mutually exclusive", strings.Join(set, " and ")))
	}
	return nil
}

// parseBackupTags applies barman-cloud-backup's extra rules to --tag:
// at most 10 tags and unique keys.
func parseBackupTags(tags *tagFlags) (map[string]string, error) {
	t, err := tags.parse()
	if err != nil {
		return nil, err
	}
	n := len(tags.tag) + len(tags.tags)/2
	if n > maxBackupTags {
		return nil, withCode(ExitUsage, fmt.Errorf("too many tags: %d given, at most %d", n, maxBackupTags))
	}
	if len(t) < n {
		return nil, withCode(ExitUsage, errors.New("tag keys must be unique"))
	}
	return t, nil
}

// elapsed formats a duration for humans, rounded to the second.
func elapsed(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// progress reports bytes, rate and ETA: a bar redrawn on stderr when it is
// a terminal, an INFO log line every 30 seconds otherwise.
type progress struct {
	what  string
	w     io.Writer
	tty   bool
	start time.Time
	total atomic.Int64
	done  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// newProgress starts a reporter; quiet disables the terminal bar.
func newProgress(what string, w io.Writer, quiet bool) *progress {
	p := &progress{what: what, w: w, start: time.Now(), stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok && !quiet {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		p.tty = err == nil
	}
	interval := 30 * time.Second
	if p.tty {
		interval = 250 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.report()
			}
		}
	}()
	return p
}

// SetTotal sets the expected byte count.
func (p *progress) SetTotal(n int64) { p.total.Store(n) }

// Add counts n more bytes.
func (p *progress) Add(n int64) { p.done.Add(n) }

func (p *progress) report() {
	done, total := p.done.Load(), p.total.Load()
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / secs
	}
	eta := "-"
	if rate > 0 && total > done {
		eta = elapsed(time.Duration(float64(total-done) / rate * float64(time.Second)))
	}
	if !p.tty {
		slog.Info(p.what+" progress", "bytes", done, "totalBytes", total,
			"bytesPerSecond", int64(rate), "eta", eta)
		return
	}
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%% %s / %s  %s/s  ETA %s\x1b[K", p.what, bar, frac*100,
		humanBytes(done), humanBytes(total), humanBytes(int64(rate)), eta)
}

// Finish stops the reporter and prints the final line.
func (p *progress) Finish(ok bool) {
	close(p.stop)
	p.wg.Wait()
	if p.tty {
		if ok {
			p.total.Store(max(p.total.Load(), p.done.Load()))
		}
		p.report()
		fmt.Fprintln(p.w)
		return
	}
	slog.Info(p.what+" finished", "bytes", p.done.Load(), "elapsed", elapsed(time.Since(p.start)), "ok", ok)
}

// humanBytes prints a byte count with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
