package backup

import "sync/atomic"

// Progress receives progress reports. Implementations must be safe for
// concurrent use.
type Progress interface {
	// SetTotal gives the expected number of bytes (an estimate).
	SetTotal(n int64)
	// Add reports n more bytes done.
	Add(n int64)
}

// counter forwards byte counts to a Progress and keeps its own total.
type counter struct {
	p Progress
	n atomic.Int64
}

func (c *counter) Add(n int64) int64 {
	if c.p != nil {
		c.p.Add(n)
	}
	return c.n.Add(n)
}
