package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"time"

	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// serveKubeletAPI serves the part of the kubelet API the API server
// proxies to: pods/exec (/exec/<ns>/<pod>/<container>), which the operator
// uses to start a backup (`/controller/manager backup <name>`). It listens
// on 127.0.0.1 with a self-signed certificate (the API server does not
// verify kubelet certificates without --kubelet-certificate-authority).
func (k *Kubelet) serveKubeletAPI(ctx context.Context) (int, error) {
	kp, err := selfSigned(k.node, []string{k.node}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return 0, err
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		return 0, fmt.Errorf("load kubelet certificate: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen for the kubelet API: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{ns}/{pod}/{container}", k.handleExec)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (k *Kubelet) handleExec(w http.ResponseWriter, req *http.Request) {
	ns, pod, container := req.PathValue("ns"), req.PathValue("pod"), req.PathValue("container")
	opts, err := remotecommand.NewOptions(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cmd := req.URL.Query()["command"]
	k.logExec(ns, pod, container, cmd)
	remotecommand.ServeExec(w, req, execInPod{k: k, ns: ns}, pod, "", container, cmd, opts,
		4*time.Hour, remotecommand.DefaultStreamCreationTimeout,
		[]string{remotecommand.StreamProtocolV4Name, remotecommand.StreamProtocolV3Name,
			remotecommand.StreamProtocolV2Name, remotecommand.StreamProtocolV1Name})
}

// logExec records the exec requests, for the scenarios' assertions.
func (k *Kubelet) logExec(ns, pod, container string, cmd []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.execs = append(k.execs, fmt.Sprintf("%s/%s/%s: %s", ns, pod, container, strings.Join(cmd, " ")))
}

// Execs returns the exec requests received so far.
func (k *Kubelet) Execs() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string{}, k.execs...)
}

// execInPod runs exec requests in a container of a played pod.
type execInPod struct {
	k  *Kubelet
	ns string
}

func (e execInPod) ExecInContainer(ctx context.Context, pod, _ string, container string, cmd []string,
	in io.Reader, out, errOut io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize, _ time.Duration) error {
	c, err := e.k.command(ctx, e.ns, pod, container, cmd)
	if err != nil {
		return err
	}
	c.Stdin, c.Stdout, c.Stderr = in, out, errOut
	if out == nil {
		c.Stdout = io.Discard
	}
	if errOut == nil {
		c.Stderr = io.Discard
	}
	err = c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
	}
	return err
}
