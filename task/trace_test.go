package task

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// traceWorkerEnv makes the test binary a traced worker joined to the
// manager at its value (see runTraceWorker).
const traceWorkerEnv = "CEYLON_TRACE_WORKER"

// spanLine is a finished span as the child prints it.
type spanLine struct {
	Name, Trace, ID, Parent string
	Error                   bool
}

func lineOf(s sdktrace.ReadOnlySpan) spanLine {
	return spanLine{Name: s.Name(), Trace: s.SpanContext().TraceID().String(), ID: s.SpanContext().SpanID().String(),
		Parent: s.Parent().SpanID().String(), Error: s.Status().Code == 1}
}

// runTraceWorker is a worker in its own process with its own tracer
// provider: it runs "traced" tasks (the first attempt fails), starting a
// span of the handler's own under the run, and, once its stdin closes,
// prints every span it ended as a JSON line.
func runTraceWorker(join string) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	a, err := agent.New("traced-worker", loopbackTCP, agent.WithWorkspace("trace-test"), agent.WithJoin(join))
	if err != nil {
		panic(err)
	}
	w, err := NewWorker(a, WithWorkerTracerProvider(tp))
	if err != nil {
		panic(err)
	}
	w.Handle("traced", func(ctx context.Context, j *Job) ([]byte, error) {
		_, span := trace.SpanFromContext(ctx).TracerProvider().Tracer("user").Start(ctx, "user.work")
		defer span.End()
		if j.Attempt == 1 {
			return nil, errors.New("first attempt fails")
		}
		return []byte("ok"), nil
	})
	if err := w.Start(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("READY")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = w.Stop()
	for _, s := range exp.GetSpans().Snapshots() {
		b, _ := json.Marshal(lineOf(s))
		fmt.Println(string(b))
	}
}

// One task's trace across two processes: the producer's submit span (a
// client agent here), the manager's queue waits and attempts (its own
// provider), and, in the worker's process, the runs and the handler's own
// span, all in one trace and nested.
func TestTraceAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := testutil.Context(t)
	mexp, cexp := tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()
	a, err := agent.New("task_manager", agent.AsAdmin(), loopbackTCP, agent.WithWorkspace("trace-test"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(a, WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(mexp))),
		WithDefaultPolicy(Policy{MaxRetries: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), traceWorkerEnv+"="+m.Addrs()[0])
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "READY" {
		t.Fatalf("child: %q", sc.Text())
	}
	if err := m.WaitForWorkers(ctx, 1); err != nil {
		t.Fatal(err)
	}

	ca, err := agent.New("producer", loopbackTCP, agent.WithWorkspace("trace-test"), agent.WithJoin(m.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ca, WithClientTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(cexp))))
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ca.Stop() })
	if err := c.Submit(ctx, messages.Task{ID: "traced-1", Type: "traced"}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Wait(ctx, "traced-1"); err != nil || !r.Success {
		t.Fatalf("%+v %v", r, err)
	}
	_ = stdin.Close()
	var spans []spanLine
	for sc.Scan() {
		var s spanLine
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		spans = append(spans, s)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, s := range append(cexp.GetSpans().Snapshots(), mexp.GetSpans().Snapshots()...) {
		spans = append(spans, lineOf(s))
	}
	byName := map[string][]spanLine{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	show := fmt.Sprintf("%+v", spans)
	want := map[string]int{SpanSubmit: 1, SpanQueueWait: 2, SpanAttempt: 2, SpanRun: 2, "user.work": 2}
	for name, n := range want {
		if len(byName[name]) != n {
			t.Fatalf("%d %s spans, want %d: %s", len(byName[name]), name, n, show)
		}
	}
	if len(spans) != 9 {
		t.Fatalf("%d spans: %s", len(spans), show)
	}
	submit := byName[SpanSubmit][0]
	ids := map[string]spanLine{}
	for _, s := range spans {
		if s.Trace != submit.Trace {
			t.Fatalf("span %s in trace %s, the submit's is %s", s.Name, s.Trace, submit.Trace)
		}
		ids[s.ID] = s
	}
	parentName := func(s spanLine) string { return ids[s.Parent].Name }
	for _, s := range spans {
		switch s.Name {
		case SpanQueueWait, SpanAttempt:
			if s.Parent != submit.ID {
				t.Fatalf("%s's parent is %q, want the submit: %s", s.Name, parentName(s), show)
			}
		case SpanRun:
			if parentName(s) != SpanAttempt {
				t.Fatalf("run's parent is %q: %s", parentName(s), show)
			}
		case "user.work":
			if parentName(s) != SpanRun {
				t.Fatalf("the handler's span's parent is %q: %s", parentName(s), show)
			}
		}
	}
	errs := 0
	for _, s := range byName[SpanAttempt] {
		if s.Error {
			errs++
		}
	}
	if errs != 1 || byName[SpanRun][0].Parent == byName[SpanRun][1].Parent {
		t.Fatalf("one failed attempt, each run under its own: %s", show)
	}
}

// An untraced task without a provider of the manager's own carries no
// trace: nothing on the wire, no span in the handler.
func TestUntracedTaskCarriesNothing(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	got := make(chan bool, 1)
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("plain", func(ctx context.Context, _ *Job) ([]byte, error) {
			got <- trace.SpanContextFromContext(ctx).IsValid()
			return nil, nil
		})
	})
	if _, err := m.Run(testutil.Context(t), messages.Task{ID: "p", Type: "plain"}); err != nil {
		t.Fatal(err)
	}
	if <-got {
		t.Fatal("an untraced task's handler runs in a span")
	}
}
