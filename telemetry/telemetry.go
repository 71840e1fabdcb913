// Package telemetry turns on OpenTelemetry tracing for a program from
// the standard environment variables: with OTEL_EXPORTER_OTLP_ENDPOINT
// (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, [Setup] installs a global
// tracer provider that batches spans to that OTLP/HTTP endpoint, and the
// W3C trace-context propagator; without it, it installs nothing and
// tracing costs nothing. The task package's spans (submit, queue wait,
// attempt, run) then reach the collector from every process of a
// workspace, one trace per task.
//
// The exporter reads the other OTEL_EXPORTER_OTLP_* variables itself
// (headers, timeouts, insecure, …), and OTEL_SERVICE_NAME overrides the
// service name given.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
)

// Configured reports whether the environment names an OTLP endpoint.
func Configured() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the OTLP exporter when the environment configures one
// (see the package doc) and returns the function that flushes and stops
// it; otherwise it installs nothing, and shutdown does nothing.
func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	if !Configured() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	if s := os.Getenv("OTEL_SERVICE_NAME"); s != "" {
		service = s
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return func(ctx context.Context) error {
		return errors.Join(tp.Shutdown(ctx))
	}, nil
}
