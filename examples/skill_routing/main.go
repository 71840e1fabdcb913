// Command skill_routing is a distributed task management system: a task
// manager hands tasks of difficulty 1-10 to workers of different
// skill (Junior 3, Intermediate 6, Senior 9), preferring a worker skilled
// enough for each task, retrying failures, and printing a final report.
//
// All in one process (the default):
//
//	go run ./examples/skill_routing
//
// On separate machines, the same program: the admin prints the address to
// join, and each worker joins with it.
//
//	go run ./examples/skill_routing -role admin -listen /ip4/0.0.0.0/tcp/7000 -workers 3
//	go run ./examples/skill_routing -role worker -join /ip4/10.0.0.5/tcp/7000/p2p/12D3KooW… -name Senior -skill 9
//
// Workers anywhere (behind home routers, cloud NATs) find the workspace by
// its ID through any bootstrap address, and reach each other over relays
// (or punched holes) when they cannot dial each other:
//
//	go run ./examples/skill_routing -role admin -public -workspace team -secret s3 -workers 2
//	go run ./examples/skill_routing -role worker -workspace team -secret s3 -bootstrap /ip4/203.0.113.7/tcp/7000/p2p/12D3KooW… -name A
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/progress"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
	"github.com/ceylon-go/ceylon/telemetry"
)

type options struct {
	role        string
	workspace   string
	listen      string
	join        string
	key         string
	name        string
	skill       int
	caps        string
	concurrency int
	workers     int
	scale       time.Duration
	timeout     time.Duration
	stopAfter   time.Duration
	verbose     bool
	secret      string
	mdns        bool
	tasks       int
	journal     string
	http        string
	httpToken   string
	strict      bool   // admin: grants required
	issuers     string // admin: operator keys trusted to issue grants
	grants      string // worker, producer: grant files
	trust       string // worker: the only managers it follows
	bootstrap   string
	relays      string
	public      bool
	serve       bool
	replicate   string
	replicas    string
	addStandby  string
	rmStandby   string
}

func main() {
	var o options
	flag.StringVar(&o.role, "role", "all", "all (admin and three workers in one process), admin, worker, producer (submits -tasks generated tasks to the admin from its own process), bootstrap (a plain DHT entry point and relay), or id (print the peer ID of the -key file, creating it)")
	flag.BoolVar(&o.serve, "serve", false, "admin: run no scenario of its own; serve producers (-role producer) until interrupted or -timeout, then report")
	flag.StringVar(&o.workspace, "workspace", "skill-routing", "workspace ID shared by every agent")
	flag.StringVar(&o.listen, "listen", "", "admin listen multiaddr (default: loopback for -role all, every interface on port 7000 for admin)")
	flag.StringVar(&o.join, "join", "", "worker, producer: the admin's address, as it printed it (with replicated admins: all of them, comma-separated); admin with -replicate: the other admins' addresses")
	flag.StringVar(&o.replicate, "replicate", "", "admin: one of several admins that replicate the tasks (Raft; log, snapshots and journal in this directory; needs -secret and -key); implies -serve")
	flag.StringVar(&o.replicas, "replicas", "", "admin with -replicate: comma-separated peer IDs of the group's first admins, the same list on each (see -role id); an admin added later with -add-standby needs none")
	flag.StringVar(&o.addStandby, "add-standby", "", "admin with -replicate: once leading, add the admin with this peer ID to the group")
	flag.StringVar(&o.rmStandby, "remove-standby", "", "admin with -replicate: once leading, remove the admin with this peer ID from the group")
	flag.StringVar(&o.bootstrap, "bootstrap", "", "comma-separated DHT entry points (the admin, any member, or a -role bootstrap node): a worker then needs no -join, it finds the admin by the workspace ID")
	flag.StringVar(&o.relays, "relays", "", "comma-separated static relays to use when behind a NAT (besides the bootstrap peers and reachable members)")
	flag.BoolVar(&o.public, "public", false, "declare this machine reachable by others (it then relays for members behind NATs); without it AutoNAT decides: it finds only public IP addresses public, and only from peers that are public too")
	flag.StringVar(&o.key, "key", "", "identity key file, so the agent's peer ID (and an admin's address) survives restarts; a grant names that ID")
	flag.BoolVar(&o.strict, "strict", false, "admin: serve other agents only in the roles their grants give them (ceylon grant issue --key ADMIN.key ...)")
	flag.StringVar(&o.issuers, "issuers", "", "admin with -strict: comma-separated peer IDs of operator keys whose grants it accepts, besides its own")
	flag.StringVar(&o.grants, "grant", "", "worker, producer: comma-separated grant files to present to a -strict admin")
	flag.StringVar(&o.trust, "trust", "", "worker: comma-separated peer IDs of the only task managers to follow (others declaring the role are ignored)")
	flag.StringVar(&o.name, "name", "Worker", "worker: name")
	flag.IntVar(&o.skill, "skill", 5, "worker: skill level 1-10")
	flag.StringVar(&o.caps, "caps", "", "worker: comma-separated capabilities (e.g. gpu,high-memory)")
	flag.IntVar(&o.concurrency, "concurrency", 1, "worker: tasks run at once")
	flag.IntVar(&o.workers, "workers", 3, "admin: how many workers to wait for")
	flag.DurationVar(&o.scale, "scale", 40*time.Millisecond, "simulated work per difficulty point")
	flag.DurationVar(&o.timeout, "timeout", 0, "give up after this long (default: -role all 2m, the other roles run until stopped)")
	flag.BoolVar(&o.verbose, "v", false, "log the framework's debug output")
	flag.BoolVar(&quiet, "q", false, "admin: no line per task (the progress bar, on a terminal, and the report stay)")
	flag.StringVar(&o.secret, "secret", os.Getenv("CEYLON_SECRET"), "workspace secret (default $CEYLON_SECRET); agents without it cannot join")
	flag.BoolVar(&o.mdns, "mdns", false, "worker: find the admin by mDNS on the local network instead of -join")
	flag.StringVar(&o.journal, "journal", "", "admin: journal file; an admin restarted on it (with the same -key and -listen) resumes where it stopped")
	flag.StringVar(&o.http, "http", "", "admin: serve the operations dashboard, the admin API (/api/v1) and /metrics on this address (e.g. 127.0.0.1:8080; beyond loopback it needs -http-token)")
	flag.StringVar(&o.httpToken, "http-token", os.Getenv("CEYLON_HTTP_TOKEN"), "admin: bearer token the dashboard and the API require (default $CEYLON_HTTP_TOKEN)")
	flag.DurationVar(&o.stopAfter, "stop-after", 0, "worker: stop once the task manager has been gone this long (default: wait for it for ever)")
	flag.IntVar(&o.tasks, "tasks", 0, "admin: run this many generated tasks (difficulty 1-3, every worker can do them) instead of the skill scenario")
	flag.Usage = func() {
		out := flag.CommandLine.Output()
		fmt.Fprint(out, `skill_routing: a task manager (admin) routes tasks to workers by skill, over
a peer-to-peer workspace (ceylon-go). With no flags, the admin and three workers
run in this process and a scenario of 13 tasks shows the routing.

Usage: skill_routing [flags]

Examples:
  skill_routing                                     # everything in one process
  skill_routing -role admin -serve                  # machine A: the task manager (prints -join ADDR)
  skill_routing -role worker -join ADDR -skill 8    # machine B: a worker
  skill_routing -role producer -join ADDR -tasks 100
  skill_routing -role admin -secret S -key k1 -replicate dir1 -replicas ID1,ID2,ID3 -join ADDR2,ADDR3
  skill_routing -role admin -serve -strict -key admin.key     # roles need grants (ceylon grant issue --key admin.key ...)
  skill_routing -role worker -join ADDR -key w1.key -grant w1.grant

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()

	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx := sigCtx
	if o.timeout > 0 { // serving roles run until stopped unless -timeout is set
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}

	// With OTEL_EXPORTER_OTLP_ENDPOINT set, every task's trace (submit,
	// queue wait, attempts, runs) goes to that collector.
	shutdownTracing, err := telemetry.Setup(ctx, "skill_routing-"+o.role)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skill_routing:", err)
		os.Exit(1)
	}
	exit := func(code int) { _ = shutdownTracing(context.WithoutCancel(ctx)); os.Exit(code) }
	defer exit(0)
	if o.role == "all" && o.timeout == 0 {
		o.timeout = 2 * time.Minute
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	switch o.role {
	case "all":
		err = runAll(ctx, o)
	case "admin":
		err = runAdmin(ctx, o, nil)
	case "worker":
		err = runWorker(ctx, o)
	case "bootstrap":
		err = runBootstrap(ctx, o)
	case "id":
		err = printID(o)
	case "producer":
		err = runProducer(ctx, o)
	default:
		err = fmt.Errorf("unknown -role %q", o.role)
	}
	switch {
	case err == nil:
	case sigCtx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Println("stopped (interrupted)") // a requested stop is a clean exit
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		fmt.Fprintf(os.Stderr, "skill_routing: gave up after -timeout %v: %v\n", o.timeout, err)
		exit(1)
	default:
		fmt.Fprintln(os.Stderr, "skill_routing:", err)
		exit(1)
	}
}

func logger(o options) *slog.Logger {
	if !o.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// process is the simulated work: it takes time proportional to the
// difficulty, one step per point, reporting its progress after each (the
// admin prints it; reports are rate-limited on the wire), and fails when
// the task is harder than the worker.
func process(scale time.Duration) task.HandlerFunc {
	return func(ctx context.Context, job *task.Job) ([]byte, error) {
		d := max(job.Task.Difficulty, 1)
		for step := 1; step <= d; step++ {
			select {
			case <-time.After(scale):
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
			job.Progress(float64(step)/float64(d), fmt.Sprintf("step %d of %d", step, d))
		}
		if job.Skill < job.Task.Difficulty {
			return nil, fmt.Errorf("too difficult: difficulty %d > skill %d", job.Task.Difficulty, job.Skill)
		}
		return []byte(fmt.Sprintf("done by %s", job.Worker)), nil
	}
}

// scenario is the skill-routing task list: one task per worker (2, 5, 8), then a
// batch with tasks too hard for some workers, and one too hard for all.
func scenario() [][]messages.Task {
	mk := func(id, d int) messages.Task {
		return messages.Task{
			ID: fmt.Sprint(id), Name: fmt.Sprintf("Task %d", id), Type: "skill",
			Description: fmt.Sprintf("simulated work of difficulty %d", d), Difficulty: d,
		}
	}
	first := []messages.Task{mk(1, 2), mk(2, 5), mk(3, 8)}
	var second []messages.Task
	for i, d := range []int{1, 3, 4, 6, 7, 9, 10, 2, 5, 8} {
		second = append(second, mk(4+i, d))
	}
	return [][]messages.Task{first, second}
}

// generated is n tasks of difficulty 1-3, in one batch.
func generated(n int) [][]messages.Task {
	tasks := make([]messages.Task, n)
	for i := range tasks {
		d := 1 + i%3
		tasks[i] = messages.Task{ID: fmt.Sprint(i + 1), Name: fmt.Sprintf("Task %d", i+1), Type: "skill",
			Description: fmt.Sprintf("simulated work of difficulty %d", d), Difficulty: d}
	}
	return [][]messages.Task{tasks}
}

func runAll(ctx context.Context, o options) error {
	if o.listen == "" {
		o.listen = "/ip4/127.0.0.1/tcp/0"
	}
	ready := make(chan string, 1)
	errc := make(chan error, 4)
	go func() { errc <- runAdmin(ctx, o, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		return err
	}
	for _, w := range []struct {
		name  string
		skill int
	}{{"Junior", 3}, {"Intermediate", 6}, {"Senior", 9}} {
		wo := o
		wo.name, wo.skill, wo.join, wo.listen = w.name, w.skill, addr, "/ip4/127.0.0.1/tcp/0"
		go func() { errc <- runWorker(ctx, wo) }()
	}
	var errs []error
	for range 4 {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

func runAdmin(ctx context.Context, o options, ready chan<- string) error {
	if o.listen == "" {
		o.listen = "/ip4/0.0.0.0/tcp/7000"
	}
	agentOpts := append([]agent.Option{
		agent.WithWorkspace(o.workspace), agent.WithListenAddrs(o.listen), agent.WithLogger(logger(o)),
		agent.WithMDNS(o.mdns),
	}, reachOptions(o)...)
	if o.secret != "" {
		agentOpts = append(agentOpts, agent.WithSecret(o.secret))
	}
	if o.key != "" {
		agentOpts = append(agentOpts, agent.WithIdentityFile(o.key))
	}
	mopts := []task.ManagerOption{}
	if o.strict {
		var issuers []peer.ID
		for _, s := range splitList(o.issuers) {
			id, err := peer.ParseID(s)
			if err != nil {
				return fmt.Errorf("-issuers %q: %w", s, err)
			}
			issuers = append(issuers, id)
		}
		mopts = append(mopts, task.WithGrantsRequired(issuers...))
	}
	if o.replicate != "" {
		ropts, err := replicaOptions(&o)
		if err != nil {
			return err
		}
		mopts = append(mopts, ropts...)
		if o.join != "" {
			agentOpts = append(agentOpts, agent.WithJoin(strings.Split(o.join, ",")...))
		}
	}
	if o.journal != "" {
		j, err := task.OpenJournal(o.journal, o.workspace)
		if err != nil {
			return err
		}
		defer j.Close()
		mopts = append(mopts, task.WithJournal(j))
	}
	admin, err := agent.New("task_manager", append(agentOpts, agent.AsAdmin(), agent.WithRole("task_manager"))...)
	if err != nil {
		return err
	}
	m, err := task.NewManager(admin, append(mopts,
		task.WithProcessors("skill"),
		task.WithDefaultPolicy(task.Policy{
			Timeout: 20 * o.scale * 10, MaxRetries: 1, RetryInterval: 50 * time.Millisecond,
			Backoff: messages.BackoffExponential, MaxRetryInterval: time.Second,
		}),
		task.WithObserver(printEvent),
	)...)
	if err != nil {
		return err
	}
	m.Agent().OnConnect(func(_ agent.Context, who agent.AgentDetail) {
		fmt.Printf("connected: %s (%s)\n", who.Name, who.Role)
	})
	if err := m.Start(ctx); err != nil {
		return err
	}
	defer m.Stop()
	addr := m.Addrs()[0]
	fmt.Printf("task manager listening; workers join with:\n  -workspace %s -join %s\n", o.workspace, addr)
	fmt.Printf("or, from anywhere that reaches a bootstrap address (this one or a -role bootstrap node):\n  -workspace %s -bootstrap %s\n", o.workspace, addr)
	if o.http != "" {
		srv, err := monitor.Start(o.http, m.LeaderOperator(), monitor.WithToken(o.httpToken)) // replicated: any admin shows the leader
		if err != nil {
			return err
		}
		defer srv.Close()
		fmt.Printf("dashboard: %s (admin API at /api/v1, metrics at /metrics; or: ceylon --url %s status)\n", srv.URL(), srv.Addr())
	}
	if ready != nil {
		ready <- addr
	}
	if o.replicate != "" {
		return serveReplicated(ctx, o, m)
	}
	fmt.Printf("waiting for %d workers…\n", o.workers)
	if err := m.WaitForWorkers(ctx, o.workers); err != nil {
		return err
	}
	batches := scenario()
	if o.tasks > 0 {
		batches = generated(o.tasks)
	}
	if o.serve {
		fmt.Println("serving producers (-role producer); Ctrl-C to stop")
		<-ctx.Done()
		batches = nil
		var cancel context.CancelFunc // report and shut down in a fresh context
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
	}
	for i, batch := range batches {
		fmt.Printf("\n== batch %d: %d tasks\n", i+1, len(batch))
		var subs []task.Submission
		for _, t := range batch {
			if _, err := m.Task(ctx, t.ID); err == nil {
				continue // resumed from the journal: already known
			}
			subs = append(subs, task.Submission{Task: t})
		}
		if len(subs) < len(batch) {
			fmt.Printf("resumed %d tasks from the journal\n", len(batch)-len(subs))
		}
		if err := m.SubmitAll(ctx, subs); err != nil {
			return err
		}
		stopBar := showProgress(len(batch), finished.Load(), failed.Load())
		for _, t := range batch {
			if _, err := m.Wait(ctx, t.ID); err != nil {
				stopBar()
				return err
			}
		}
		stopBar()
	}
	rep, err := m.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Println("\n== final report")
	_, _ = rep.WriteTo(os.Stdout)
	fmt.Println("\nshutting down workers")
	return m.Shutdown(ctx, "all tasks done")
}

// finished and failed count the results the observer saw, for the
// progress bar; quiet (-q) leaves out the per-task lines.
var (
	finished, failed atomic.Int64
	quiet            bool
)

// showProgress draws a bar on stderr (a terminal only: stdout keeps the
// per-task lines) counting the results of a batch of total tasks as they
// come, in whatever order; the returned func draws the last state and
// stops it.
func showProgress(total int, doneBefore, failedBefore int64) func() {
	if total < 50 || !progress.IsTerminal(os.Stderr) {
		return func() {}
	}
	bar := progress.New(os.Stderr, "progress")
	stop, stopped := make(chan struct{}), make(chan struct{})
	update := func() {
		bar.Update(int(finished.Load()-doneBefore), total, int(failed.Load()-failedBefore))
	}
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				update()
			case <-stop:
				update()
				return
			}
		}
	}()
	return func() { close(stop); <-stopped }
}

func printEvent(ev task.Event) {
	switch ev.Type {
	case task.EventCompleted:
		finished.Add(1)
	case task.EventFailed:
		finished.Add(1)
		failed.Add(1)
	}
	if quiet {
		return
	}
	switch ev.Type {
	case task.EventAssigned:
		fmt.Printf("assign  task %-3s attempt %d -> %s\n", ev.TaskID, ev.Attempt, ev.Worker)
	case task.EventCompleted:
		fmt.Printf("result  task %-3s ok     by %s in %v\n", ev.TaskID, ev.Worker, ev.Result.ExecutionTime.Round(time.Millisecond))
	case task.EventFailed:
		fmt.Printf("result  task %-3s FAILED by %s: %s\n", ev.TaskID, ev.Worker, ev.Err)
	case task.EventRetrying:
		fmt.Printf("retry   task %-3s after %v (%s)\n", ev.TaskID, ev.Delay.Round(time.Millisecond), ev.Err)
	case task.EventRequeued:
		fmt.Printf("requeue task %-3s (%s)\n", ev.TaskID, ev.Err)
	case task.EventProgress:
		fmt.Printf("running task %-3s %3.0f%% %s (%s)\n", ev.TaskID, 100*ev.Progress, ev.ProgressMessage, ev.Worker)
	}
}

func runWorker(ctx context.Context, o options) error {
	if o.join == "" && !o.mdns && o.bootstrap == "" {
		return errors.New("a worker needs -join <admin address>, -bootstrap <entry point> (the workspace is found by its ID), or -mdns on a LAN")
	}
	if o.listen == "" {
		o.listen = "/ip4/0.0.0.0/tcp/0"
	}
	var caps []string
	if o.caps != "" {
		caps = strings.Split(o.caps, ",")
	}
	agentOpts := append([]agent.Option{agent.WithWorkspace(o.workspace), agent.WithListenAddrs(o.listen),
		agent.WithLogger(logger(o)), agent.WithMDNS(o.mdns)}, reachOptions(o)...)
	if o.join != "" {
		agentOpts = append(agentOpts, agent.WithJoin(strings.Split(o.join, ",")...))
	}
	if o.secret != "" {
		agentOpts = append(agentOpts, agent.WithSecret(o.secret))
	}
	if o.key != "" {
		agentOpts = append(agentOpts, agent.WithIdentityFile(o.key))
	}
	a, err := agent.New(o.name, append(agentOpts, agent.WithRole("worker"))...)
	if err != nil {
		return err
	}
	wopts := []task.WorkerOption{task.WithSkill(o.skill), task.WithCapabilities(caps...), task.WithMaxConcurrency(o.concurrency)}
	grants, err := readGrants(o.grants)
	if err != nil {
		return err
	}
	if len(grants) > 0 {
		wopts = append(wopts, task.WithWorkerGrants(grants...))
	}
	if o.trust != "" {
		var ids []peer.ID
		for _, s := range splitList(o.trust) {
			id, err := peer.ParseID(s)
			if err != nil {
				return fmt.Errorf("-trust %q: %w", s, err)
			}
			ids = append(ids, id)
		}
		wopts = append(wopts, task.WithTrustedManagers(ids...))
	}
	var managerGone atomic.Bool
	if o.role == "worker" {
		adopted := false
		wopts = append(wopts, task.WithManagerWatch(func(m agent.AgentDetail, present bool) {
			managerGone.Store(!present)
			switch {
			case !present:
				fmt.Printf("worker %s: task manager %s lost; waiting for it to come back\n", o.name, m.Name)
			case adopted:
				fmt.Printf("worker %s: task manager %s back\n", o.name, m.Name)
			}
			adopted = true
		}))
	}
	if o.stopAfter > 0 {
		wopts = append(wopts, task.WithStopWithoutManager(o.stopAfter))
	}
	w, err := task.NewWorker(a, wopts...)
	if err != nil {
		return err
	}
	w.Handle("skill", process(o.scale))
	stopNote := noteSlowJoin(o)
	err = w.Start(ctx)
	stopNote()
	if err != nil {
		return err
	}
	if o.role == "worker" {
		fmt.Printf("worker %s (skill %d) joined workspace %s\n", o.name, o.skill, o.workspace)
		go func() { // what the manager said of the registration
			types, err := w.Registration(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				fmt.Printf("worker %s: registration refused: %v\n", o.name, err)
			case err == nil:
				fmt.Printf("worker %s: registered for %s\n", o.name, strings.Join(types, ", "))
			}
		}()
	}
	select {
	case <-w.Done():
		switch {
		case o.role != "worker":
		case managerGone.Load():
			fmt.Printf("worker %s: stopped, the task manager was gone for %v\n", o.name, o.stopAfter)
		default:
			fmt.Printf("worker %s: shut down by the manager\n", o.name)
		}
		return nil
	case <-ctx.Done():
		_ = w.Stop()
		return ctx.Err()
	}
}

// reachOptions are the flags on finding the workspace and reaching
// agents behind NATs.
func reachOptions(o options) []agent.Option {
	var opts []agent.Option
	if o.bootstrap != "" {
		opts = append(opts, agent.WithBootstrap(strings.Split(o.bootstrap, ",")...))
	}
	if o.relays != "" {
		opts = append(opts, agent.WithPeerOptions(peer.WithRelays(strings.Split(o.relays, ",")...)))
	}
	if o.public {
		opts = append(opts, agent.WithPeerOptions(peer.WithReachability(peer.ReachabilityPublic)))
	}
	return opts
}

// runBootstrap runs a plain DHT entry point and relay for the workspace.
func runBootstrap(ctx context.Context, o options) error {
	if o.listen == "" {
		o.listen = "/ip4/0.0.0.0/tcp/4001"
	}
	popts := []peer.Option{peer.WithWorkspace(o.workspace), peer.WithListenAddrs(o.listen), peer.WithLogger(logger(o))}
	if o.secret != "" {
		popts = append(popts, peer.WithSecret(o.secret))
	}
	if o.key != "" {
		popts = append(popts, peer.WithIdentityFile(o.key))
	}
	if o.bootstrap != "" {
		popts = append(popts, peer.WithBootstrap(strings.Split(o.bootstrap, ",")...))
	}
	if o.public {
		popts = append(popts, peer.WithReachability(peer.ReachabilityPublic))
	}
	b, err := peer.NewBootstrap(ctx, popts...)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Printf("bootstrap node up; agents find the workspace with:\n  -workspace %s -bootstrap %s\n", o.workspace, b.Addrs()[0])
	<-ctx.Done()
	return nil
}

// runProducer submits -tasks generated tasks to the admin from this
// process (task.Client) and waits for their results.
func runProducer(ctx context.Context, o options) error {
	if o.join == "" && o.bootstrap == "" {
		return errors.New("a producer needs -join <admin address> or -bootstrap <entry point>")
	}
	if o.tasks <= 0 {
		return errors.New("a producer needs -tasks N")
	}
	if o.listen == "" {
		o.listen = "/ip4/0.0.0.0/tcp/0"
	}
	opts := append([]agent.Option{agent.WithWorkspace(o.workspace), agent.WithListenAddrs(o.listen), agent.WithLogger(logger(o))}, reachOptions(o)...)
	if o.join != "" {
		opts = append(opts, agent.WithJoin(strings.Split(o.join, ",")...))
	}
	if o.secret != "" {
		opts = append(opts, agent.WithSecret(o.secret))
	}
	if o.key != "" {
		opts = append(opts, agent.WithIdentityFile(o.key))
	}
	a, err := agent.New(o.name, append(opts, agent.WithRole("producer"))...)
	if err != nil {
		return err
	}
	grants, err := readGrants(o.grants)
	if err != nil {
		return err
	}
	c, err := task.NewClient(a, task.WithClientGrants(grants...))
	if err != nil {
		return err
	}
	stopNote := noteSlowJoin(o)
	err = a.Start(ctx)
	stopNote()
	if err != nil {
		return err
	}
	defer a.Stop()
	tasks := generated(o.tasks)[0]
	for i := range tasks {
		tasks[i].ID = o.name + "-" + tasks[i].ID // producers do not collide
	}
	if err := c.SubmitAll(ctx, tasks); err != nil {
		return err
	}
	fmt.Printf("producer %s: %d tasks submitted\n", o.name, len(tasks))
	failed := 0
	for _, t := range tasks {
		r, err := c.Wait(ctx, t.ID)
		if err != nil {
			return err
		}
		if r.Success {
			fmt.Printf("result  task %-3s ok     by %s\n", t.ID, r.Worker)
		} else {
			failed++
			fmt.Printf("result  task %-3s FAILED by %s: %s\n", t.ID, r.Worker, r.ErrorMessage)
		}
	}
	fmt.Printf("producer %s: %d done, %d failed\n", o.name, len(tasks), failed)
	return nil
}

// noteSlowJoin says, while joining takes long, that it is retrying and
// what may be wrong (the join itself retries until it works or the
// -timeout ends); call the result once joined.
func noteSlowJoin(o options) (stop func()) {
	where := o.join
	if where == "" {
		where = o.bootstrap
	}
	if where == "" {
		return func() {}
	}
	hint := "is the admin running, at that address?"
	if o.secret != "" {
		hint = "is the admin running there, with the same -workspace and -secret?"
	}
	t := time.AfterFunc(3*time.Second, func() {
		fmt.Fprintf(os.Stderr, "still trying to reach %s (retrying; %s)\n", where, hint)
	})
	return func() { t.Stop() }
}

// readGrants reads comma-separated grant files.
func readGrants(list string) ([][]byte, error) {
	var out [][]byte
	for _, path := range splitList(list) {
		g, err := task.ReadGrant(path)
		if err != nil {
			return nil, fmt.Errorf("-grant: %w", err)
		}
		out = append(out, g)
	}
	return out, nil
}

// splitList splits a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
