package testutil

import (
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
)

const racyChildEnv = "TESTUTIL_RACY_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(racyChildEnv) != "" {
		racy()
		select {} // killed by the test, as most children are
	}
	os.Exit(m.Run())
}

// racy writes one variable from two goroutines, unsynchronized.
func racy() {
	var x int
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { x++ })
	}
	wg.Wait()
	_ = x
}

// A child that races and is then killed fails the test binary through
// Check; one that does not race leaves the exit code alone.
func TestChildRacesAreCaught(t *testing.T) {
	if !raceEnabled {
		t.Skip("needs -race")
	}
	t.Setenv("GORACE", os.Getenv("GORACE")) // restored after: CatchChildRaces sets it
	run := func(env string) int {
		t.Helper()
		c := CatchChildRaces()
		c.out = io.Discard
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), env)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if env != "" {
			Eventually(t, "the child's report", func() bool { return c.reports() > 0 })
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		return c.Check(0)
	}
	if got := run(racyChildEnv + "=1"); got != 1 {
		t.Fatalf("a racy child: Check returned %d", got)
	}
	if got := run(""); got != 0 {
		t.Fatalf("a child without a race: Check returned %d", got)
	}
}
