// Command ceylon operates a ceylon-go workspace's task manager: its
// state, its workers, its tasks (list, show, cancel, retry, delete), its
// task types (pause, resume) and a live tail of its events.
//
// It reaches the manager either over HTTP, at the address of its monitor
// (--url, with --token when the monitor has one), or from inside the
// workspace as a member (--join the manager's address, or --bootstrap and
// the workspace ID to find it; --secret when the workspace has one), with
// no HTTP port open on the manager.
//
//	go install github.com/ceylon-go/ceylon/cmd/ceylon@latest
//	ceylon --url 127.0.0.1:8080 status
//	ceylon --join /ip4/10.0.0.5/tcp/7000/p2p/12D3… --workspace skill-routing tasks ls --status failed
//
// Exit codes: 0 done; 1 any other error; 2 bad usage; 3 no such task;
// 4 refused (not final, a bad filter, an unauthorized token, no grant, not the
// leader); 5 the manager could not be reached in time.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ue usageError
		if !errors.As(err, &ue) || !ue.printed {
			fmt.Fprintln(os.Stderr, "ceylon:", err)
		}
	}
	os.Exit(exitCode(err))
}
