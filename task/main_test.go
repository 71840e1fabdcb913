package task

import (
	"os"
	"testing"

	"github.com/ceylon-go/ceylon/internal/testutil"
)

func TestMain(m *testing.M) {
	if join := os.Getenv(benchWorkersEnv); join != "" {
		runBenchWorkers(join)
		return
	}
	if join := os.Getenv(traceWorkerEnv); join != "" {
		runTraceWorker(join)
		return
	}
	if join := os.Getenv(benchProducerEnv); join != "" {
		runBenchProducer(join)
		return
	}
	races := testutil.CatchChildRaces()
	os.Exit(races.Check(testutil.CheckLeaks(m.Run())))
}
