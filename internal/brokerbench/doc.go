// Package brokerbench measures NATS JetStream on the workload of the task
// layer's benchmarks (task.BenchmarkRemoteProducer*), on the same machine
// and in the same process layout, so that `make bench` prints the broker's
// row beside the project's in one run.
//
// It is a module of its own, so that the broker and its client are no
// dependency of ceylon-go: `cd internal/brokerbench && go test -bench .`.
//
// The workload: a producer in the benchmark's process publishes no-op
// tasks of 64 bytes to a work-queue stream (file storage) on a nats-server
// in a second process, from one goroutine with asynchronous publishes;
// four workers in a third process, one connection each, consume from one
// durable pull consumer with at most 256 messages in flight each (the
// task benchmarks' workers run 256 at once each), and for each task
// publish its completion to the producer and acknowledge it. Throughput is
// tasks per second until the producer has heard every completion (the
// task benchmarks stop when the manager, the broker's counterpart, has
// them: one hop less); the round trip is one task at a time, from the
// publish (acknowledged by the stream, so stored) to the completion heard.
//
// The CommitFloor benchmarks time one synced commit of ten records on
// this machine's disk: a plain append and fsync, a bbolt transaction
// (the task journal's engine: two syncs per commit) and a pebble batch (a
// write-ahead log: one), the floor under every durable acknowledgement.
package brokerbench
