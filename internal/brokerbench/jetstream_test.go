package brokerbench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The child processes: the benchmark re-executes its own binary with one
// of these in the environment.
const (
	envRole  = "BROKERBENCH_ROLE" // "server" or "workers"
	envURL   = "BROKERBENCH_URL"  // the server's URL, for the workers
	envStore = "BROKERBENCH_STORE"
	envSync  = "BROKERBENCH_SYNC" // "always": fsync every write before it is acknowledged
)

const (
	stream   = "TASKS"
	subject  = "tasks"
	doneSubj = "done"
	durable  = "workers"
	workers  = 4
	slots    = 256 // messages in flight per worker: the task benchmarks' WithMaxConcurrency
	payload  = 64  // bytes per task
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "server":
		runServer(os.Getenv(envStore), os.Getenv(envSync) == "always")
		return
	case "workers":
		runWorkers(os.Getenv(envURL))
		return
	}
	os.Exit(m.Run())
}

// runServer runs a nats-server with JetStream on loopback until stdin
// closes; it prints "READY url" once it accepts connections.
func runServer(store string, syncAlways bool) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: store, NoSigs: true, NoLog: true}
	if syncAlways {
		opts.SyncAlways = true
	}
	s, err := server.NewServer(opts)
	if err != nil {
		panic(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		panic("nats-server did not start")
	}
	fmt.Println("READY", s.ClientURL())
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	s.Shutdown()
	s.WaitForShutdown()
}

// runWorkers runs the four workers until stdin closes; it prints "READY"
// once every one is consuming.
func runWorkers(url string) {
	ctx := context.Background()
	var stops []func()
	for range workers {
		nc, err := nats.Connect(url)
		if err != nil {
			panic(err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			panic(err)
		}
		cons, err := js.Consumer(ctx, stream, durable)
		if err != nil {
			panic(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			// The no-op task: its completion to the producer, then its
			// acknowledgement to the stream (which removes it).
			_ = nc.Publish(doneSubj, m.Data()[:8])
			_ = m.Ack()
		}, jetstream.PullMaxMessages(slots))
		if err != nil {
			panic(err)
		}
		stops = append(stops, func() { cc.Stop(); nc.Close() })
	}
	fmt.Println("READY")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	for _, stop := range stops {
		stop()
	}
}

// child starts this binary in role, waits for its READY line and returns
// what follows READY on it; it is stopped when the benchmark ends.
func child(b *testing.B, env ...string) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "READY"); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return strings.TrimSpace(rest)
		}
	}
	b.Fatalf("%s did not start", env[0])
	return ""
}

// BenchmarkJetStreamWorkQueue runs the workload on JetStream's defaults:
// a stored message is acknowledged once written to the file, which the
// server syncs to disk every 2 minutes. tasks/s over b.N tasks published
// asynchronously from one goroutine (make bench runs 20,000), then the
// round trip's percentiles over 1,000 tasks one at a time.
func BenchmarkJetStreamWorkQueue(b *testing.B) { runJetStream(b, false) }

// BenchmarkJetStreamWorkQueueSyncAlways is BenchmarkJetStreamWorkQueue
// with the server syncing every write to disk before acknowledging it
// (sync_interval: always): the durability of the task layer's journal,
// which acknowledges a submission once its commit is on disk.
func BenchmarkJetStreamWorkQueueSyncAlways(b *testing.B) { runJetStream(b, true) }

func runJetStream(b *testing.B, syncAlways bool) {
	ctx := context.Background()
	sync := ""
	if syncAlways {
		sync = "always"
	}
	url := child(b, envRole+"=server", envStore+"="+b.TempDir(), envSync+"="+sync)
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	var pubErr atomic.Pointer[error] // the first publish the stream refused
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { pubErr.CompareAndSwap(nil, &err) }))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{subject}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: workers * slots, AckWait: 30 * time.Second,
	}); err != nil {
		b.Fatal(err)
	}
	var done atomic.Int64
	last := make(chan uint64, 1)
	var rt atomic.Bool // the round trips: hand each completion over
	sub, err := nc.Subscribe(doneSubj, func(m *nats.Msg) {
		done.Add(1)
		if rt.Load() {
			last <- binary.BigEndian.Uint64(m.Data)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	child(b, envRole+"=workers", envURL+"="+url)
	task := func(i uint64) []byte {
		p := make([]byte, payload)
		binary.BigEndian.PutUint64(p, i)
		return p
	}

	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := js.PublishAsync(subject, task(uint64(i)), jetstream.WithStallWait(time.Minute)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged after a minute")
	}
	if err := pubErr.Load(); err != nil {
		b.Fatal(*err)
	}
	deadline := time.Now().Add(time.Minute)
	for done.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d tasks completed after a minute", done.Load(), b.N)
		}
		time.Sleep(100 * time.Microsecond)
	}
	el := time.Since(start)
	b.StopTimer()

	rt.Store(true)
	lat := make([]time.Duration, 1000)
	for i := range lat {
		id := uint64(b.N + i)
		t0 := time.Now()
		if _, err := js.Publish(ctx, subject, task(id)); err != nil {
			b.Fatal(err)
		}
		for got := uint64(0); got != id; {
			select {
			case got = <-last:
			case <-time.After(10 * time.Second):
				b.Fatalf("task %d: no completion after 10 s", id)
			}
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/el.Seconds(), "tasks/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "rt-p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "rt-p99-µs")
}
