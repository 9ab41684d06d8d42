package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// nsExecEnv carries the JSON nsSpec to a re-executed test binary, which
// then sets up the mounts, drops privileges and execs the real program.
// This is how a "container" gets its own mount namespace: Go cannot run
// code between fork and exec, so the test binary itself is the init step.
const nsExecEnv = "BCLOUD_E2E_NSEXEC"

// bindMount is one bind mount made in the new mount namespace.
type bindMount struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// nsSpec describes a program run in a private mount namespace.
type nsSpec struct {
	Binds []bindMount `json:"binds"`
	// UID and GID to run as; negative keeps root.
	UID  int      `json:"uid"`
	GID  int      `json:"gid"`
	Argv []string `json:"argv"`
	Dir  string   `json:"dir"`
}

// nsCommand returns a command that runs spec in a new mount namespace
// through the test binary (see RunNSExecIfAsked). env is the program's
// whole environment.
func nsCommand(spec nsSpec, env []string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the test binary: %w", err)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode namespace spec: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(append([]string{}, env...), nsExecEnv+"="+string(raw))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go makes / recursively private in the child before exec, so
		// the binds below never leak into the host's namespace.
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
		Setpgid:      true,
	}
	return cmd, nil
}

// RunNSExecIfAsked turns the process into the program described by
// $BCLOUD_E2E_NSEXEC, and never returns when that variable is set. The
// test binary calls it first thing in TestMain.
func RunNSExecIfAsked() {
	raw, ok := os.LookupEnv(nsExecEnv)
	if !ok {
		return
	}
	if err := nsExec(raw); err != nil {
		fmt.Fprintf(os.Stderr, "e2e nsexec: %v\n", err)
		os.Exit(127)
	}
}

func nsExec(raw string) error {
	var spec nsSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("decode namespace spec: %w", err)
	}
	if err := os.Unsetenv(nsExecEnv); err != nil {
		return fmt.Errorf("unset %s: %w", nsExecEnv, err)
	}
	if len(spec.Argv) == 0 {
		return fmt.Errorf("empty argv")
	}
	// The working directory may be hidden by a mount: enter it first.
	if spec.Dir != "" {
		if err := os.Chdir(spec.Dir); err != nil {
			return fmt.Errorf("change to %s: %w", spec.Dir, err)
		}
	}
	// Open every source first: a mount may hide a later source (an
	// emptyDir on /tmp hides the harness's directories under /tmp).
	fds := make([]int, len(spec.Binds))
	for i, b := range spec.Binds {
		fd, err := unix.Open(b.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", b.Source, err)
		}
		fds[i] = fd
	}
	for i, b := range spec.Binds {
		src := fmt.Sprintf("/proc/self/fd/%d", fds[i])
		if err := unix.Mount(src, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
		_ = unix.Close(fds[i])
	}
	prog := spec.Argv[0]
	if !strings.Contains(prog, "/") {
		p, err := exec.LookPath(prog)
		if err != nil {
			return fmt.Errorf("find %s: %w", prog, err)
		}
		prog = p
	}
	if spec.GID >= 0 {
		if err := syscall.Setgroups([]int{spec.GID}); err != nil {
			return fmt.Errorf("set groups: %w", err)
		}
		if err := syscall.Setresgid(spec.GID, spec.GID, spec.GID); err != nil {
			return fmt.Errorf("set gid %d: %w", spec.GID, err)
		}
	}
	if spec.UID >= 0 {
		if err := syscall.Setresuid(spec.UID, spec.UID, spec.UID); err != nil {
			return fmt.Errorf("set uid %d: %w", spec.UID, err)
		}
	}
	// A credential change clears the parent-death signal: set it again so
	// the program still dies with the test binary.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set parent-death signal: %w", err)
	}
	if err := syscall.Exec(prog, spec.Argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", filepath.Base(prog), err)
	}
	return nil
}
