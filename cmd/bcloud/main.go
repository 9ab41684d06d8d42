// Command bcloud backs up PostgreSQL and archives its WAL to object
// storage. Invoked as barman-cloud-<command>, it acts as bcloud <command>.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/bcloud-dev/bcloud/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
