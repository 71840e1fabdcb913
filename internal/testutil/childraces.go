package testutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ChildRaces collects the race detector's reports of the processes a test
// binary starts: see CatchChildRaces.
type ChildRaces struct {
	dir string
	out io.Writer // where Check prints the reports: os.Stderr
}

// CatchChildRaces, called in TestMain before m.Run, points the race
// detector of every process the tests then start (this binary started as
// a command or in a role, or one it starts in turn) at files of their own,
// through GORACE's log_path; Check reads them after m.Run. Without it, a
// child's report went to a log shown only when its test failed for
// another reason, and a child killed at the end of its test never exits
// with the race detector's status: a race in a child could fail no test.
// In a binary built without -race it does nothing. This binary's own
// race detector read GORACE when it started and reports as before.
func CatchChildRaces() *ChildRaces {
	if !raceEnabled {
		return &ChildRaces{}
	}
	dir, err := os.MkdirTemp("", "child-races")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testutil: child race reports are not caught:", err)
		return &ChildRaces{}
	}
	opts := strings.Fields(os.Getenv("GORACE"))
	opts = slices.DeleteFunc(opts, func(o string) bool { return strings.HasPrefix(o, "log_path=") })
	opts = append(opts, "log_path="+filepath.Join(dir, "race"))
	if err := os.Setenv("GORACE", strings.Join(opts, " ")); err != nil {
		fmt.Fprintln(os.Stderr, "testutil: child race reports are not caught:", err)
	}
	return &ChildRaces{dir: dir, out: os.Stderr}
}

// Check ends a TestMain with CatchChildRaces: given m.Run's exit code, it
// prints every report a child wrote and returns 1 if there was one, else
// the code.
func (c *ChildRaces) Check(code int) int {
	if c.dir == "" {
		return code
	}
	defer func() { _ = os.RemoveAll(c.dir) }()
	for pid, report := range c.read() {
		fmt.Fprintf(c.out, "the race detector of a process a test started (pid %s) reported:\n%s\n", pid, report)
		code = 1
	}
	return code
}

// reports counts the reports written so far.
func (c *ChildRaces) reports() int { return len(c.read()) }

// read returns the reports written so far, by process ID.
func (c *ChildRaces) read() map[string][]byte {
	out := map[string][]byte{}
	if c.dir == "" {
		return out
	}
	files, _ := filepath.Glob(filepath.Join(c.dir, "race.*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(bytes.TrimSpace(b)) > 0 {
			out[strings.TrimPrefix(filepath.Ext(f), ".")] = b
		}
	}
	return out
}
