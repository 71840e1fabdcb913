//go:build race

package peer

import "testing"

// skipUnderRace skips a test on the simulated network under the race
// detector: with it, testing/synctest and libp2p's dialer crash the Go 1.26
// runtime now and then (SIGSEGV in timer.maybeRunChan, about 1 run in 15).
// make test runs these tests a second time without -race.
func skipUnderRace(t *testing.T) {
	t.Helper()
	t.Skip("simulated network under synctest: run without -race (make test does)")
}
