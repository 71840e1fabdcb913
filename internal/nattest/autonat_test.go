package nattest

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/netns"
	"github.com/ceylon-go/ceylon/peer"
)

// The lone manager: a workspace whose only manager is publicly
// reachable, with no bootstrap node and no reachability declared, and
// workers of which one is public and two are behind NATs. The manager
// learns that it is public from the public worker's AutoNAT answers
// (every node answers v1 probes while it does not find itself behind a
// NAT), so it relays for the NATed ones, which reserve a slot on it and
// reach each other through it. With AutoNAT's service on managers only, it
// never learned it, and the NATed workers could not reach each other.

// loneHandler prints what a node receives.
type loneHandler struct{ peer.NopHandler }

func (loneHandler) HandleDirect(_ context.Context, _ peer.ID, data []byte) {
	fmt.Println("FRAME", string(data))
}

// runLone runs a plain node ("lone-manager", a roster server, or
// "lone-worker", which joins boot) until stdin closes. It prints "ADDR
// addr id", then answers "STAT" with "STAT reachability reservations" and
// "SEND id" with "SENT err".
func runLone(role, ip, boot string, stdin *bufio.Scanner) error {
	ctx := context.Background()
	opts := []peer.Option{peer.WithWorkspace("lone"), peer.WithListenAddrs("/ip4/" + ip + "/tcp/7000"), peer.WithHandler(loneHandler{})}
	if role == "lone-manager" {
		opts = append(opts, peer.WithServer(true))
	}
	n, err := peer.New(ctx, opts...)
	if err != nil {
		return err
	}
	defer n.Close()
	if boot != "" {
		if _, err := n.Join(ctx, boot); err != nil {
			return err
		}
	}
	fmt.Println("ADDR", n.Addrs()[0], n.ID())
	for stdin.Scan() {
		f := strings.Fields(stdin.Text())
		switch {
		case len(f) == 1 && f[0] == "STAT":
			s := n.Stats()
			fmt.Println("STAT", s.Reachability, s.RelayReservations)
		case len(f) == 2 && f[0] == "SEND":
			id, err := peer.ParseID(f[1])
			if err == nil {
				sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = n.Send(sctx, id, []byte("hello"))
				cancel()
			}
			fmt.Println("SENT", err)
		}
	}
	return nil
}

// awaitStat asks p for its stats every 250 ms until ok holds for them or
// within has passed.
func awaitStat(t *testing.T, p *proc, what string, within time.Duration, ok func(reach string, reservations int) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		mark := len(p.log.Lines())
		p.send(t, "STAT")
		var line string
		p.log.Wait(5*time.Second, func(l []string) bool {
			for _, x := range l[min(mark, len(l)):] {
				if strings.HasPrefix(x, "STAT ") {
					line = x
					return true
				}
			}
			return false
		})
		var reach string
		var res int
		if _, err := fmt.Sscanf(line, "STAT %s %d", &reach, &res); err == nil {
			last = line
			if ok(reach, res) {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v (last: %q)", what, within, last)
}

func TestLoneManagerRelaysForNATedWorkers(t *testing.T) {
	t.Parallel()
	n := netns.New(t, "iptables")
	pub := n.Bridge("pub")
	// Addresses AutoNAT takes for public ones (inside the test's own
	// namespaces: nothing leaves the machine).
	mgrH := n.OnBridge("lm", pub, "44.1.1.2")
	wpH := n.OnBridge("lp", pub, "44.1.1.3")
	_, w1H := n.BehindNAT("l1", pub, "44.1.1.11", n.Subnet(1))
	_, w2H := n.BehindNAT("l2", pub, "44.1.1.12", n.Subnet(2))
	mgr := start(t, n, mgrH, "lone-manager", "", "lm")
	f := strings.Fields(mgr.log.AwaitLine(t, "ADDR ", 30*time.Second))
	addr := f[1] + "/p2p/" + f[2]
	start(t, n, wpH, "lone-worker", addr, "lp").log.AwaitLine(t, "ADDR ", 30*time.Second)
	w1 := start(t, n, w1H, "lone-worker", addr, "l1")
	w1.log.AwaitLine(t, "ADDR ", 30*time.Second)
	w2 := start(t, n, w2H, "lone-worker", addr, "l2")
	w2id := strings.Fields(w2.log.AwaitLine(t, "ADDR ", 30*time.Second))[2]

	began := time.Now()
	awaitStat(t, mgr, "the manager finds it is public", 2*time.Minute, func(reach string, _ int) bool { return reach == "Public" })
	t.Logf("the manager found it is public %v after the workers started", time.Since(began).Round(time.Second))
	for _, w := range []*proc{w1, w2} {
		awaitStat(t, w, "a NATed worker reserves a slot on the manager's relay", time.Minute, func(_ string, res int) bool { return res > 0 })
	}
	// w1 reaches w2 once the roster brings it w2's relayed address: try
	// until then.
	deadline := time.Now().Add(time.Minute)
	sent := ""
	for sent != "SENT <nil>" {
		if time.Now().After(deadline) {
			t.Fatalf("w1 -> w2: %s", sent)
		}
		if sent != "" {
			time.Sleep(250 * time.Millisecond) // a poll interval: the roster's next delta
		}
		mark := len(w1.log.Lines())
		w1.send(t, "SEND "+w2id)
		w1.log.Await(t, "w1's send to w2", 20*time.Second, func(l []string) bool {
			for _, x := range l[mark:] {
				if strings.HasPrefix(x, "SENT ") {
					sent = x
					return true
				}
			}
			return false
		})
	}
	w2.log.AwaitLine(t, "FRAME hello", 10*time.Second)
}
