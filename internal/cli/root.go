// Package cli is the bcloud command line: one file per command, each
// turning flags into a config and calling a domain package. Exit codes
// follow barman-cloud and are decided here only.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/all"
	"github.com/bcloud-dev/bcloud/internal/storage/azure"
)

// Version is set at build time with -ldflags.
var Version = "dev"

// Exit codes of barman-cloud (barman/clients/cloud_cli.py).
const (
	ExitOK      = 0
	ExitFailed  = 1 // connected, but the operation failed
	ExitNetwork = 2 // connectivity
	ExitUsage   = 3 // bad command line
	ExitGeneral = 4 // anything else
)

// exitError carries an exit code to Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// BarmanCommands are the barman-cloud command names bcloud answers to,
// also as barman-cloud-<name> links.
var BarmanCommands = []string{
	"wal-archive", "wal-restore", "check-wal-archive", "backup", "restore",
	"backup-list", "backup-show", "backup-delete", "backup-keep",
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	args = dispatchArgv0(args)
	root := newRoot(stdout, stderr)
	root.SetArgs(args[1:])
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitGeneral
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if errors.Is(err, context.Canceled) {
		code = 130
	}
	var q quiet
	if !errors.As(err, &q) {
		fmt.Fprintf(stderr, "ERROR: %s\n", oneLine(err.Error()))
	}
	return code
}

// dispatchArgv0 turns "barman-cloud-wal-archive ARGS" into "bcloud wal-archive ARGS".
func dispatchArgv0(args []string) []string {
	if len(args) == 0 {
		return []string{"bcloud"}
	}
	base := filepath.Base(args[0])
	if cmd, ok := strings.CutPrefix(base, "barman-cloud-"); ok {
		for _, c := range BarmanCommands {
			if c == cmd {
				return append([]string{"bcloud", cmd}, args[1:]...)
			}
		}
	}
	return args
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "bcloud",
		Short:         "PostgreSQL backup and WAL archiving to object storage, compatible with barman-cloud",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(ExitUsage, err) })
	root.SetVersionTemplate("bcloud {{.Version}}\n")
	root.Flags().BoolP("version", "V", false, "show the version and exit")
	root.AddCommand(
		newWALArchive(),
		newWALRestore(),
		newCheckWALArchive(),
		newCheckStorage(),
		newBackupDelete(),
		newBackupKeep(),
		newVerify(),
		newBackup(),
		newRestore(),
		newBackupList(),
		newBackupShow(),
		newPlugin(),
	)
	for _, c := range root.Commands() {
		// barman-cloud has no -h for help: -h is --host in backup.
		c.Flags().Bool("help", false, "show this help message and exit")
		c.Flags().BoolP("version", "V", false, "show the version and exit")
	}
	return root
}

// common holds the options every barman-cloud command takes.
type common struct {
	verbose         int
	quiet           int
	test            bool
	provider        string
	endpointURL     string
	awsProfile      string
	readTimeout     int
	azureCredential string
}

func (c *common) register(fs *pflag.FlagSet) {
	fs.CountVarP(&c.verbose, "verbose", "v", "increase output verbosity (e.g., -vv is more than -v)")
	fs.CountVarP(&c.quiet, "quiet", "q", "decrease output verbosity (e.g., -qq is less than -q)")
	fs.BoolVarP(&c.test, "test", "t", false, "Test cloud connectivity and exit")
	fs.StringVar(&c.provider, "cloud-provider", "", "The cloud provider to use as a storage backend (aws-s3, azure-blob-storage, google-cloud-storage; default: from the URL)")
	fs.StringVar(&c.endpointURL, "endpoint-url", "", "Override default S3 endpoint URL with the given one")
	fs.StringVarP(&c.awsProfile, "aws-profile", "P", "", "profile name (e.g. INI section in AWS credentials file)")
	fs.StringVar(&c.awsProfile, "profile", "", "profile name (deprecated: use --aws-profile)")
	fs.IntVar(&c.readTimeout, "read-timeout", 0, "the time in seconds until a timeout is raised when waiting to read from a connection (defaults to 60 seconds)")
	fs.StringVar(&c.azureCredential, "azure-credential", "", "Optionally specify the type of credential to use when authenticating with Azure (azure-cli, managed-identity, default)")
	fs.StringVar(&c.azureCredential, "credential", "", "alias of --azure-credential")
	_ = fs.MarkHidden("profile")
	_ = fs.MarkHidden("credential")
}

// setupLogging applies -v/-q as barman-cloud does: WARNING by default,
// -v INFO, -vv DEBUG, -q ERROR.
func (c *common) setupLogging(ctx context.Context, stderr io.Writer) context.Context {
	level := slog.LevelWarn + slog.Level(4*(c.quiet-c.verbose))
	level = max(level, slog.LevelDebug)
	h := slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	logger := slog.New(h)
	slog.SetDefault(logger)
	return ctx
}

// options returns the connection options for config.FromEnv.
func (c *common) options() (config.Options, error) {
	p, err := config.ParseProvider(c.provider)
	if err != nil {
		return config.Options{}, withCode(ExitUsage, err)
	}
	switch c.azureCredential {
	case "", "azure-cli", "managed-identity", "default":
	default:
		return config.Options{}, withCode(ExitUsage, fmt.Errorf("unknown --azure-credential %q: use azure-cli, managed-identity or default", c.azureCredential))
	}
	return config.Options{
		Provider:        p,
		EndpointURL:     c.endpointURL,
		AWSProfile:      c.awsProfile,
		ReadTimeout:     time.Duration(c.readTimeout) * time.Second,
		AzureCredential: azure.Credential(c.azureCredential),
	}, nil
}

// open resolves and opens url with the common options (adjust may change
// them) and answers -t/--test; answered means the command is done.
func (c *common) open(ctx context.Context, url, server string, adjust func(*config.Options)) (b storage.Bucket, answered bool, err error) {
	opts, err := c.options()
	if err != nil {
		return nil, false, err
	}
	if adjust != nil {
		adjust(&opts)
	}
	if b, err = openBucket(ctx, url, opts); err != nil {
		return nil, false, err
	}
	if c.test {
		err = connectivityTest(ctx, b, server)
		_ = b.Close()
		return nil, true, err
	}
	return b, false, nil
}

// openBucket resolves a destination with credentials from the environment.
func openBucket(ctx context.Context, destination string, opts config.Options) (storage.Bucket, error) {
	st, err := config.FromEnv(destination, opts, os.Getenv)
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	b, err := all.Open(ctx, st)
	if err != nil {
		return nil, withCode(ExitNetwork, err)
	}
	return b, nil
}

// connectivityTest implements -t/--test: 0 when the destination answers,
// 1 when the bucket is missing, 2 when it cannot be reached.
func connectivityTest(ctx context.Context, b storage.Bucket, server string) error {
	errStop := errors.New("stop")
	err := b.List(ctx, server+"/", func(storage.ObjectInfo) error { return errStop })
	switch {
	case err == nil || errors.Is(err, errStop):
		slog.InfoContext(ctx, "cloud storage reachable", "serverName", server)
		return nil
	case errors.Is(err, storage.ErrNoBucket):
		return withCode(ExitFailed, err)
	}
	return withCode(ExitNetwork, err)
}

func validateServer(server string) error {
	if server == "" || strings.Contains(server, "/") || server == "." || server == ".." {
		return withCode(ExitUsage, fmt.Errorf("server name %q is not valid: use a plain name such as the cluster name", server))
	}
	return nil
}
