package task

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// The scaling signal reports, by type, the backlog, the attempts in
// flight and the workers' capacity, at the interval asked for, and the
// metrics say the same.
func TestScalingSignal(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		var mu sync.Mutex
		var loads []Load
		m := startManager(t, on, WithScalingSignal(100*time.Millisecond, func(l Load) {
			mu.Lock()
			loads = append(loads, l)
			mu.Unlock()
		}))
		release := make(chan struct{})
		startWorker(t, m, "W", func(w *Worker) {
			w.Handle("job", func(ctx context.Context, _ *Job) ([]byte, error) {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil, nil
			})
			w.Handle("other", noop)
		}, on, WithMaxConcurrency(2))
		ctx := testutil.Context(t)
		var subs []Submission
		for i := range 5 {
			subs = append(subs, Submission{Task: messages.Task{ID: fmt.Sprint(i), Type: "job", Description: "blocks"}})
		}
		if err := m.SubmitAll(ctx, subs); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		loads = nil
		mu.Unlock()
		start := time.Now()
		time.Sleep(time.Second) // virtual: ten intervals
		synctest.Wait()
		mu.Lock()
		got := append([]Load(nil), loads...)
		mu.Unlock()
		if len(got) != 10 {
			t.Fatalf("%d calls in a second at 100 ms", len(got))
		}
		want := TypeLoad{Type: "job", Backlog: 3, InFlight: 2, Workers: 1, Capacity: 2, Utilization: 1}
		if l := got[len(got)-1]; l.Type("job") != want || l.Type("other") != (TypeLoad{Type: "other", Workers: 1, Capacity: 2}) || l.At.Before(start) {
			t.Fatalf("load %+v", l)
		}
		// The metrics read the same.
		var out strings.Builder
		mfs, err := m.Metrics().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "ceylon_type_") {
				for _, mt := range mf.GetMetric() {
					fmt.Fprintf(&out, "%s{%s} %v\n", mf.GetName(), mt.GetLabel()[0].GetValue(), mt.GetGauge().GetValue())
				}
			}
		}
		for _, line := range []string{"ceylon_type_backlog{job} 3", "ceylon_type_inflight{job} 2", "ceylon_type_capacity{job} 2", "ceylon_type_utilization{job} 1"} {
			if !strings.Contains(out.String(), line) {
				t.Errorf("metrics lack %q:\n%s", line, out.String())
			}
		}
		if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) > 0 {
			t.Errorf("metric lint: %v %v", problems, err)
		}
		close(release)
		for i := range 5 {
			if _, err := m.Wait(ctx, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		l, err := m.Load(ctx)
		if err != nil || l.Type("job") != (TypeLoad{Type: "job", Workers: 1, Capacity: 2}) {
			t.Fatalf("after: %+v %v", l, err)
		}
	})
}
