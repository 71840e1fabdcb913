// Package nattest holds the test of agents behind NAT routers, in network
// namespaces (see nat_test.go); it has no code of its own.
package nattest
