package peer

import (
	"testing"

	"github.com/libp2p/go-libp2p"
)

// A node listening on loopback only runs no AutoNAT service and, unless
// told, no AutoNAT v2: their dial-back hosts would serve nobody.
func TestLoopbackOnlyRunsNoAutoNATService(t *testing.T) {
	for _, tc := range []struct {
		listen   []string
		loopback bool
	}{
		{[]string{"/ip4/127.0.0.1/tcp/0"}, true},
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/0/quic-v1"}, true},
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip4/0.0.0.0/tcp/0"}, false},
		{[]string{"/ip4/10.0.0.1/tcp/7000"}, false},
		{nil, false},
	} {
		c := &config{listen: tc.listen, reachConfig: defaultReach()}
		c.server = true
		if got := c.loopbackOnly(); got != tc.loopback {
			t.Errorf("%v: loopbackOnly %v, want %v", tc.listen, got, tc.loopback)
		}
		if got := c.autoNATv2On(true); got == tc.loopback {
			t.Errorf("%v: AutoNAT v2 on a manager %v", tc.listen, got)
		}
		var lc libp2p.Config
		if err := lc.Apply(reachOptions(c, &Node{})...); err != nil {
			t.Fatal(err)
		}
		if lc.AutoNATConfig.EnableService == tc.loopback {
			t.Errorf("%v: AutoNAT service %v", tc.listen, lc.AutoNATConfig.EnableService)
		}
		on := true
		c.autoNATv2 = &on
		if !c.autoNATv2On(false) {
			t.Errorf("%v: WithAutoNATv2(true) not obeyed", tc.listen)
		}
	}
}
