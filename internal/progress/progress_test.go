package progress

import (
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	got := Line("tasks", 50, 200, 2, 2*time.Second)
	want := "tasks 50/200 (25%) 25/s elapsed 2s, 2 failed"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPlainOutputIsThrottledButFinalLineAlwaysPrinted(t *testing.T) {
	var b strings.Builder
	r := New(&b, "tasks")
	for i := range 100 {
		r.Update(i, 100, 0)
	}
	r.Update(100, 100, 0)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "tasks 100/100 (100%)") {
		t.Fatalf("lines: %q", lines)
	}
	if strings.Contains(b.String(), "\r") {
		t.Fatal("a non-terminal got a redrawn bar")
	}
}
