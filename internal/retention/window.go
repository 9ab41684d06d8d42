package retention

import (
	"sort"
	"time"
)

// RecoveryWindow is what the Barman Cloud plugin reports in an
// ObjectStore's status.serverRecoveryWindow for one server.
type RecoveryWindow struct {
	// FirstRecoverabilityPoint is the end time of the oldest completed backup.
	FirstRecoverabilityPoint time.Time
	// LastSuccessfulBackupTime is the end time of the newest completed backup.
	LastSuccessfulBackupTime time.Time
}

// Window computes the recovery window from a server's backups: completed
// means DONE with an end time. Zero times mean "none".
func Window(backups []Backup) RecoveryWindow {
	var done []Backup
	for _, b := range backups {
		if b.Status == "DONE" && !b.EndTime.IsZero() {
			done = append(done, b)
		}
	}
	if len(done) == 0 {
		return RecoveryWindow{}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].EndTime.Before(done[j].EndTime) })
	return RecoveryWindow{
		FirstRecoverabilityPoint: done[0].EndTime,
		LastSuccessfulBackupTime: done[len(done)-1].EndTime,
	}
}
