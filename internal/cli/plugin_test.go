package cli

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloudnative-pg/cnpg-i/pkg/identity"

	"github.com/bcloud-dev/bcloud/internal/cnpgi"
)

func TestPluginHealthcheck(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	srv := &cnpgi.Server{Identity: &cnpgi.Identity{Services: []identity.PluginCapability_Service_Type{}},
		PluginPath: dir, Ready: func(a net.Addr) { ready <- a }}
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	if code, out := runMain(t, "plugin", "healthcheck", "unix", "--plugin-path", dir); code != 0 {
		t.Errorf("serving sidecar: exit %d: %s", code, out)
	}
	if code, out := runMain(t, "plugin", "healthcheck", "unix", "--plugin-path", t.TempDir()); code != ExitFailed {
		t.Errorf("no sidecar: exit %d, want %d: %s", code, ExitFailed, out)
	}
	if code, _ := runMain(t, "plugin", "healthcheck", "tcp"); code != ExitUsage {
		t.Errorf("unknown transport: exit %d, want %d", code, ExitUsage)
	}
}

func TestPluginArguments(t *testing.T) {
	for _, v := range []string{"NAMESPACE", "CLUSTER_NAME", "POD_NAME", "PGDATA"} {
		t.Setenv(v, "")
	}
	code, out := runMain(t, "plugin", "instance", "--plugin-path", t.TempDir())
	if code != ExitUsage || !strings.Contains(out, "NAMESPACE, CLUSTER_NAME, POD_NAME") {
		t.Errorf("instance without its environment: exit %d: %s", code, out)
	}
	code, out = runMain(t, "plugin", "restore", "--plugin-path", t.TempDir())
	if code != ExitUsage || !strings.Contains(out, "PGDATA") {
		t.Errorf("restore without its environment: exit %d: %s", code, out)
	}
	if code, out := runMain(t, "plugin", "operator"); code != ExitUsage {
		t.Errorf("operator without an address: exit %d: %s", code, out)
	}
	if code, out := runMain(t, "plugin", "operator", "--server-address", ":9090"); code != ExitUsage {
		t.Errorf("operator without certificates: exit %d: %s", code, out)
	}
	if code, out := runMain(t, "plugin", "instance", "--log-level", "loud"); code != ExitUsage {
		t.Errorf("bad log level: exit %d: %s", code, out)
	}
}
