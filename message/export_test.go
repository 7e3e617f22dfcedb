package message

import "time"

// SetPersistWait changes how long reads wait for the persister, until the
// returned function restores it.
func SetPersistWait(d time.Duration) (restore func()) {
	old := persistWait
	persistWait = d
	return func() { persistWait = old }
}
