// Package netns builds test networks out of Linux network namespaces:
// hosts on a shared bridge (a LAN, or "the internet"), NAT routers with
// private networks behind them (iptables MASQUERADE, no port forwarding),
// links that can be cut, and processes started inside a namespace. Every
// namespace, link and process is removed when the test ends. Tests that
// use it skip, with the reason, where namespaces cannot be made (not
// root, no iproute2 or iptables, no CAP_NET_ADMIN).
package netns

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seq tells apart the networks of one test process.
var seq atomic.Int32

// Host is one namespace.
type Host struct {
	Name string                 // namespace
	IP   string                 // its address on the network it was added to
	cut  func(up bool) []string // the command that cuts or restores its uplink
}

// Net is one test's namespaces.
type Net struct {
	t       testing.TB
	id      int
	bridges []string
	hosts   []*Host
	links   []string // root-namespace links to delete
	mu      sync.Mutex
}

// Run runs a command and fails the test if it fails.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// New starts a test network, or skips the test where it cannot run.
// need names the commands the test needs besides ip (e.g. "iptables").
func New(t testing.TB, need ...string) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespaces need root")
	}
	for _, c := range append([]string{"ip"}, need...) {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("skipping: %s is not available: %v", c, err)
		}
	}
	// Root without CAP_NET_ADMIN (a locked-down container) lists
	// namespaces but cannot make one: try.
	n := &Net{t: t, id: (os.Getpid()*7 + int(seq.Add(1))) % 100000}
	probe := n.name("cyp", "")
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create a network namespace here (no CAP_NET_ADMIN?): %v %s", err, out)
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	t.Cleanup(n.destroy)
	return n
}

func (n *Net) name(kind, s string) string { return fmt.Sprintf("%s%d%s", kind, n.id, s) }

// Subnet returns a /24 prefix (three octets) for network k of this test,
// unlikely to collide with another test's in the same process.
func (n *Net) Subnet(k int) string {
	return fmt.Sprintf("10.%d.%d", 100+(n.id+k*37)%150, n.id/150%250)
}

func (n *Net) addHost(short string) *Host {
	h := &Host{Name: n.name("cy", short)}
	Run(n.t, "ip", "netns", "add", h.Name)
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	n.Exec(h, "ip", "link", "set", "lo", "up")
	return h
}

// Exec runs a command inside h and fails the test if it fails.
func (n *Net) Exec(h *Host, args ...string) {
	n.t.Helper()
	Run(n.t, append([]string{"ip", "netns", "exec", h.Name}, args...)...)
}

// Bridge makes a bridge: a shared network for the hosts added to it.
func (n *Net) Bridge(short string) string {
	b := n.name("cyb", short)
	Run(n.t, "ip", "link", "add", b, "type", "bridge")
	Run(n.t, "ip", "link", "set", b, "up")
	n.bridges = append(n.bridges, b)
	return b
}

// OnBridge adds a host to bridge with address ip (a.b.c.d, a /24).
func (n *Net) OnBridge(short, bridge, ip string) *Host {
	h := n.addHost(short)
	h.IP = ip
	outside, inside := n.name("cyv", short), n.name("cyi", short)
	Run(n.t, "ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
	n.links = append(n.links, outside)
	Run(n.t, "ip", "link", "set", inside, "netns", h.Name)
	Run(n.t, "ip", "link", "set", outside, "master", bridge)
	Run(n.t, "ip", "link", "set", outside, "up")
	n.Exec(h, "ip", "addr", "add", ip+"/24", "dev", inside)
	n.Exec(h, "ip", "link", "set", inside, "up")
	h.cut = func(up bool) []string {
		state := "down"
		if up {
			state = "up"
		}
		return []string{"ip", "link", "set", outside, state}
	}
	return h
}

// BehindNAT adds a NAT router on bridge (address routerIP) and, behind it,
// a private network (subnet, three octets) with one host: the host's
// traffic leaves masqueraded as the router's address, and nothing from
// the bridge side reaches the private network except replies to
// connections made from inside (no port forwarding, no route in). It
// returns the private host.
func (n *Net) BehindNAT(short, bridge, routerIP, subnet string) (router, inside *Host) {
	router = n.OnBridge(short+"r", bridge, routerIP)
	inside = n.addHost(short)
	inside.IP = subnet + ".2"
	lan, host := n.name("cyl", short), n.name("cyh", short)
	Run(n.t, "ip", "link", "add", lan, "type", "veth", "peer", "name", host)
	Run(n.t, "ip", "link", "set", lan, "netns", router.Name)
	Run(n.t, "ip", "link", "set", host, "netns", inside.Name)
	n.Exec(router, "ip", "addr", "add", subnet+".1/24", "dev", lan)
	n.Exec(router, "ip", "link", "set", lan, "up")
	n.Exec(inside, "ip", "addr", "add", inside.IP+"/24", "dev", host)
	n.Exec(inside, "ip", "link", "set", host, "up")
	n.Exec(inside, "ip", "route", "add", "default", "via", subnet+".1")
	wan := n.name("cyi", short+"r")
	n.Exec(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	n.Exec(router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", wan, "-j", "MASQUERADE")
	n.Exec(router, "iptables", "-A", "FORWARD", "-i", wan, "-o", lan, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	n.Exec(router, "iptables", "-A", "FORWARD", "-i", wan, "-o", lan, "-j", "DROP")
	n.Exec(router, "iptables", "-A", "INPUT", "-i", wan, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
	n.Exec(router, "iptables", "-A", "INPUT", "-i", wan, "-j", "DROP")
	return router, inside
}

// Cut takes h's link to its bridge down (up false) or brings it back.
func (n *Net) Cut(h *Host, up bool) {
	n.t.Helper()
	Run(n.t, h.cut(up)...)
}

func (n *Net) destroy() {
	for _, h := range n.hosts {
		// Whatever still runs in the namespace dies with the test.
		if out, err := exec.Command("ip", "netns", "pids", h.Name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", h.Name).Run()
	}
	for _, l := range n.links {
		_ = exec.Command("ip", "link", "del", l).Run()
	}
	for _, b := range n.bridges {
		_ = exec.Command("ip", "link", "del", b).Run()
	}
}

// Start runs a command inside h, its output going to out; it is killed
// when the test ends.
func (n *Net) Start(h *Host, out *LineLog, args ...string) *exec.Cmd {
	n.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.Name}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// LineLog collects a process's output lines and lets a test wait for one.
type LineLog struct {
	mu      sync.Mutex
	lines   []string
	partial string
	changed chan struct{}
}

// NewLineLog returns an empty log.
func NewLineLog() *LineLog { return &LineLog{changed: make(chan struct{})} }

// Write implements io.Writer.
func (l *LineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(l.partial + string(p)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	l.partial = ""
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if len(p) > 0 && p[len(p)-1] != '\n' && len(got) > 0 {
		l.partial = got[len(got)-1]
		got = got[:len(got)-1]
	}
	l.lines = append(l.lines, got...)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// Wait waits until ok holds for the lines so far, for at most within,
// and reports whether it did. ok runs without the log's lock (on the
// lines so far, which Write only ever appends to), so it may end the test.
func (l *LineLog) Wait(within time.Duration, ok func(lines []string) bool) bool {
	deadline := time.After(within)
	for {
		l.mu.Lock()
		lines, ch := l.lines[:len(l.lines):len(l.lines)], l.changed
		l.mu.Unlock()
		if ok(lines) {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// Await is Wait that fails the test after within.
func (l *LineLog) Await(t testing.TB, what string, within time.Duration, ok func(lines []string) bool) {
	t.Helper()
	if !l.Wait(within, ok) {
		t.Fatalf("timed out waiting for %s; output:\n%s", what, l.Text())
	}
}

// AwaitLine waits for a line starting with prefix and returns it.
func (l *LineLog) AwaitLine(t testing.TB, prefix string, within time.Duration) string {
	t.Helper()
	var line string
	l.Await(t, fmt.Sprintf("a line %q", prefix), within, func(lines []string) bool {
		for _, s := range lines {
			if strings.HasPrefix(s, prefix) {
				line = s
				return true
			}
		}
		return false
	})
	return line
}

// Lines returns a copy of the lines so far.
func (l *LineLog) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Text returns the output so far.
func (l *LineLog) Text() string { return strings.Join(l.Lines(), "\n") }
