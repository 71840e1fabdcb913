package task

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Tracing (OpenTelemetry). A task's trace travels with it: a submit
// (Manager.Submit, Client.Submit, or any submit whose context holds a
// span) puts its span's W3C traceparent on the task; the manager journals
// it and, at each assignment, records the queue wait and starts an
// attempt span under it; the assignment carries the attempt's context to
// the worker, whose run span (and whatever the handler starts from the
// job's context) nests under it, in whichever process it runs:
//
//	ceylon.submit          (producer)
//	├── ceylon.queue_wait  (manager: ready to assigned, per attempt)
//	└── ceylon.attempt     (manager: assigned to result, per attempt)
//	    └── ceylon.run     (worker: the handler)
//
// The spans go to the TracerProvider given (WithTracerProvider,
// WithWorkerTracerProvider, WithClientTracerProvider), by default to
// otel's global one, which exports nothing until the program installs
// one (see the README: an OTLP exporter from the standard OTEL_* variables).
// A task submitted without a trace gets none, unless the manager was
// given a provider of its own: it then starts the task's trace itself.

const tracerName = "github.com/ceylon-go/ceylon/task"

// Span names.
const (
	SpanSubmit    = "ceylon.submit"
	SpanQueueWait = "ceylon.queue_wait"
	SpanAttempt   = "ceylon.attempt"
	SpanRun       = "ceylon.run"
)

// maxTraceparent bounds a traceparent read from the wire (55 bytes for
// version 00).
const maxTraceparent = 256

var traceContext = propagation.TraceContext{}

// tracerOf is tp's tracer for the task package, otel's global one for nil.
func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// traceparentOf is the W3C traceparent of ctx's span ("" if none).
func traceparentOf(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// withTraceparent is ctx with the remote span of a traceparent (ctx as it
// is for "" or a malformed one).
func withTraceparent(ctx context.Context, tp string) context.Context {
	if tp == "" || len(tp) > maxTraceparent {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}

func taskAttrs(id, typ string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("ceylon.task.id", id), attribute.String("ceylon.task.type", typ))
}

// endSpan ends a span with err as its status.
func endSpan(s trace.Span, err error) {
	if err != nil {
		s.RecordError(err)
		s.SetStatus(otelcodes.Error, err.Error())
	}
	s.End()
}

// traced gives each submission of the batch without a trace the span of
// ctx, if it has one.
func traced(ctx context.Context, batch []Submission) {
	tp := traceparentOf(ctx)
	if tp == "" {
		return
	}
	for i := range batch {
		if batch[i].Trace == "" {
			batch[i].Trace = tp
		}
	}
}

// rootTrace starts (and ends) a submit span for a task that came without
// a trace, and returns its traceparent. Only called in the actor.
func (m *Manager) rootTrace(t *taskState) string {
	ctx, span := m.cfg.tracer.Start(context.Background(), SpanSubmit, trace.WithSpanKind(trace.SpanKindProducer),
		taskAttrs(t.task.ID, t.task.Type))
	span.End()
	return traceparentOf(ctx)
}

// traceAttempt records the queue wait of t's live attempt and starts its
// attempt span; it returns the traceparent the assignment carries. Only
// called in the actor.
func (m *Manager) traceAttempt(t *taskState, w *workerState, assignedAt time.Time) string {
	parent := withTraceparent(context.Background(), t.trace)
	if !trace.SpanContextFromContext(parent).IsValid() {
		return ""
	}
	ready := t.readyAt
	if ready.IsZero() || ready.After(assignedAt) {
		ready = t.submittedAt
	}
	attrs := taskAttrs(t.task.ID, t.task.Type)
	_, wait := m.cfg.tracer.Start(parent, SpanQueueWait, trace.WithTimestamp(ready), attrs,
		trace.WithAttributes(attribute.Int("ceylon.attempt", t.attempt)))
	wait.End(trace.WithTimestamp(assignedAt))
	if t.span != nil { // an attempt that never ended (a lost lead)
		t.span.End()
	}
	ctx, span := m.cfg.tracer.Start(parent, SpanAttempt, trace.WithTimestamp(assignedAt), attrs,
		trace.WithAttributes(attribute.Int("ceylon.attempt", t.attempt), attribute.String("ceylon.worker", w.detail.Name)))
	t.span = span
	return traceparentOf(ctx)
}

// endAttemptSpan ends an attempt's span with its outcome.
func endAttemptSpan(s trace.Span, outcome string) {
	s.SetAttributes(attribute.String("ceylon.outcome", outcome))
	if outcome != "ok" {
		s.SetStatus(otelcodes.Error, outcome)
	}
	s.End()
}
