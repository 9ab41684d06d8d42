package cnpgi

import (
	"context"
	"errors"
	"io/fs"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

// Errors the plugin processes raise themselves; domain errors come from
// the domain packages. Status turns both into gRPC codes.
var (
	// ErrNoPermission: the sidecar may not read an ObjectStore or one of
	// its Secrets yet. The operator's next reconcile fixes the Role.
	ErrNoPermission = errors.New("no permission to read the object store configuration or its credentials")
	// ErrConfiguration: the Cluster or ObjectStore configuration cannot
	// work as it is (missing ObjectStore, bad destination, ...).
	ErrConfiguration = errors.New("invalid plugin configuration")
	// ErrEndOfWAL: a prefetch found the end of the archived WAL; the
	// caller should stop asking the archive and stream instead.
	ErrEndOfWAL = errors.New("end of WAL reached")
)

// Status returns err as a gRPC status error with the code of upstream's
// contract (plugin-barman-cloud internal/cnpgi/common/errors.go):
//
//	NotFound            the WAL file (or the bucket) is not in the archive
//	OutOfRange          end of the archived WAL (prefetch found a gap)
//	InvalidArgument     a name that is not a WAL file name
//	FailedPrecondition  no permission to read the credentials yet, a
//	                    configuration to fix, or a non-empty archive
//	Unavailable         transient storage trouble: try again
//	Internal            anything else (local I/O, permanent storage errors)
//
// The message is the error's, which never holds a secret: storage
// drivers redact credentials. A status error passes through unchanged.
func Status(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	return status.Error(Code(err), err.Error())
}

// Code classifies an error; see Status.
func Code(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, ErrEndOfWAL):
		return codes.OutOfRange
	case errors.Is(err, wal.ErrNotFound), errors.Is(err, storage.ErrNoBucket):
		return codes.NotFound
	case errors.Is(err, wal.ErrInvalidName):
		return codes.InvalidArgument
	case errors.Is(err, ErrNoPermission), errors.Is(err, ErrConfiguration),
		errors.Is(err, wal.ErrArchiveNotEmpty):
		return codes.FailedPrecondition
	case errors.Is(err, wal.ErrConflict):
		return codes.AlreadyExists
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, storage.ErrPermanent):
		return codes.Internal
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// Local files: the destination of a restore, a WAL to archive.
		return codes.Internal
	}
	// What is left comes from the network and the object store, which
	// barman-cloud reports as connectivity or generic failures: both
	// are worth retrying.
	return codes.Unavailable
}
