//go:build !race

package peer

import "testing"

// skipUnderRace: see race_test.go.
func skipUnderRace(*testing.T) {}
