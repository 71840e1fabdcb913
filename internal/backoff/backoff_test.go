package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	p := Policy{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2}
	want := []time.Duration{10, 20, 40, 80, 100, 100}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	fixed := Policy{Base: time.Second}
	if fixed.Delay(5) != time.Second {
		t.Errorf("fixed delay grew: %v", fixed.Delay(5))
	}
	j := Policy{Base: 100 * time.Millisecond, Factor: 2, Jitter: 0.5}
	for range 100 {
		if d := j.Delay(2); d < 100*time.Millisecond || d > 300*time.Millisecond {
			t.Fatalf("jittered delay %v outside [100ms, 300ms]", d)
		}
	}
	huge := Policy{Base: time.Hour, Factor: 10}
	if d := huge.Delay(100); d <= 0 {
		t.Fatalf("overflow: %v", d)
	}
}
