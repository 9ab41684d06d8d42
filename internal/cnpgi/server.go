package cnpgi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Server serves the plugin's gRPC services: on a unix socket named after
// the plugin in PluginPath (the sidecars), or on TCP with mutual TLS 1.3
// (the operator side), as cnpg-i-machinery's server does.
type Server struct {
	Identity identity.IdentityServer
	// Register adds the process's services to the gRPC server.
	Register []func(*grpc.Server)
	// PluginPath is the socket directory (default /plugins).
	PluginPath string
	// Address, when set, selects TCP; the three certificate paths are
	// then required. They are read again at every handshake, so rotated
	// certificates apply without a restart.
	Address        string
	ServerCertPath string
	ServerKeyPath  string
	ClientCertPath string
	// Ready, when set, is called with the listener's address once the
	// server accepts connections.
	Ready func(net.Addr)
}

// Serve runs the server until ctx is done.
func (s *Server) Serve(ctx context.Context) error {
	md, err := s.Identity.GetPluginMetadata(ctx, &identity.GetPluginMetadataRequest{})
	if err != nil {
		return fmt.Errorf("read plugin metadata: %w", err)
	}
	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(recoverUnary, logUnary)}
	var lis net.Listener
	if s.Address != "" {
		if s.ServerCertPath == "" || s.ServerKeyPath == "" || s.ClientCertPath == "" {
			return errors.New("serve on TCP: --server-cert, --server-key and --client-cert are all required")
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			MinVersion:         tls.VersionTLS13,
			ClientAuth:         tls.RequireAndVerifyClientCert,
			GetConfigForClient: s.tlsConfig,
		})))
		if lis, err = (&net.ListenConfig{}).Listen(ctx, "tcp", s.Address); err != nil {
			return fmt.Errorf("listen on %s: %w", s.Address, err)
		}
	} else {
		dir := s.PluginPath
		if dir == "" {
			dir = DefaultPluginPath
		}
		sock := filepath.Join(dir, md.GetName())
		if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale socket %s: %w", sock, err)
		}
		if lis, err = (&net.ListenConfig{}).Listen(ctx, "unix", sock); err != nil {
			return fmt.Errorf("listen on %s: %w", sock, err)
		}
	}
	srv := grpc.NewServer(opts...)
	identity.RegisterIdentityServer(srv, s.Identity)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	for _, reg := range s.Register {
		reg(srv)
	}
	slog.InfoContext(ctx, "serving plugin", "name", md.GetName(), "version", md.GetVersion(), "address", lis.Addr().String())
	if s.Ready != nil {
		s.Ready(lis.Addr())
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			hs.Shutdown()
			// Give running calls (a WAL upload) a moment to finish.
			done := make(chan struct{})
			go func() { srv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				srv.Stop()
			}
		case <-stopped:
		}
	}()
	err = srv.Serve(lis)
	close(stopped)
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve gRPC: %w", err)
	}
	return nil
}

// tlsConfig loads the key pair and the client CA for each connection.
func (s *Server) tlsConfig(*tls.ClientHelloInfo) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(s.ServerCertPath, s.ServerKeyPath)
	if err != nil {
		return nil, fmt.Errorf("load server key pair: %w", err)
	}
	pem, err := os.ReadFile(s.ClientCertPath)
	if err != nil {
		return nil, fmt.Errorf("read client certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client certificate %s holds no PEM certificate", s.ClientCertPath)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
	}, nil
}

// recoverUnary turns a panic in a handler into an Internal error instead
// of killing the process (and with it every other call in flight).
func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.ErrorContext(ctx, "panic in gRPC handler", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "panic in %s: %v", info.FullMethod, r)
		}
	}()
	return h(ctx, req)
}

// logUnary logs every call at debug level and failures at warning level,
// except the NotFound and OutOfRange answers PostgreSQL's restore_command
// receives all the time.
func logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	elapsed := time.Since(start)
	switch code := status.Code(err); code {
	case codes.OK:
		slog.DebugContext(ctx, "gRPC call", "method", info.FullMethod, "elapsed", elapsed)
	case codes.NotFound, codes.OutOfRange:
		slog.DebugContext(ctx, "gRPC call", "method", info.FullMethod, "code", code.String(), "error", err, "elapsed", elapsed)
	default:
		slog.WarnContext(ctx, "gRPC call failed", "method", info.FullMethod, "code", code.String(), "error", err, "elapsed", elapsed)
	}
	return resp, err
}
