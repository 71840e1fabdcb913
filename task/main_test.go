package task

import (
	"os"
	"testing"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"go.uber.org/goleak"
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
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}
