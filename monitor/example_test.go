package monitor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/task"
)

// Serve a manager's dashboard, /stats and /metrics.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, _ := agent.New("manager", agent.AsAdmin(), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-monitor"))
	m, _ := task.NewManager(admin)
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()

	srv, err := monitor.Start("127.0.0.1:0", m) // the dashboard is at srv.URL()
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	resp, err := http.Get(srv.URL() + "stats")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var s task.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		panic(err)
	}
	fmt.Println(resp.Status, "- dated:", !s.Time.IsZero(), "- workers:", len(s.Workers), "pending:", s.Pending)
	// Output: 200 OK - dated: true - workers: 0 pending: 0
}

// The admin API over HTTP, with a token: monitor.Client is a
// task.Operator, and the manager's refusals come back as its named errors.
func ExampleClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, _ := agent.New("manager", agent.AsAdmin(), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-client"))
	m, _ := task.NewManager(admin)
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()
	_ = m.Submit(ctx, messages.Task{ID: "waiting", Type: "nobody-runs-this"})

	srv, err := monitor.Start("127.0.0.1:0", m, monitor.WithToken("s3cret"))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	c, _ := monitor.NewClient(srv.Addr(), monitor.WithClientToken("s3cret"))
	page, _ := c.ListTasks(ctx, task.TaskFilter{Status: "pending"})
	fmt.Println(page.Total, page.Tasks[0].ID)
	fmt.Println(c.Cancel(ctx, "waiting"))
	fmt.Println(errors.Is(c.Retry(ctx, "nope"), task.ErrUnknownTask))
	wrong, _ := monitor.NewClient(srv.Addr(), monitor.WithClientToken("guess"))
	_, err = wrong.Stats(ctx)
	fmt.Println(errors.Is(err, monitor.ErrUnauthorized))
	// Output:
	// 1 waiting
	// <nil>
	// true
	// true
}
