package e2e

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func TestMain(m *testing.M) {
	RunNSExecIfAsked()
	log.SetLogger(logr.Discard())
	code := m.Run()
	_ = testenv.StopEnvTest()
	os.Exit(code)
}
