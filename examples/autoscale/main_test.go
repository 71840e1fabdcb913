package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/task"
)

// A burst grows the pool past one worker, every task runs, and with the
// backlog gone the pool shrinks back to one.
func TestScalesUpAndDown(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), 300, 10*time.Millisecond, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`300 tasks in \S+, at most (\d+) workers`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output:\n%s", out.String())
	}
	if peak, _ := strconv.Atoi(m[1]); peak < 2 {
		t.Fatalf("the pool never grew:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "idle again: 1 worker") {
		t.Fatalf("the pool did not shrink:\n%s", out.String())
	}
}

func TestDesired(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ inflight, backlog, want int }{{0, 0, 1}, {4, 0, 2}, {4, 100, 8}, {2, 1, 2}} {
		if got := desired(loadOf(c.inflight, c.backlog)); got != c.want {
			t.Errorf("in flight %d, backlog %d: %d workers, want %d", c.inflight, c.backlog, got, c.want)
		}
	}
}

func loadOf(inflight, backlog int) task.TypeLoad {
	return task.TypeLoad{Type: "resize", InFlight: inflight, Backlog: backlog}
}
