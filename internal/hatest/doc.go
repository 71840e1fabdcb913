// Package hatest tests replicated task managers as a user runs them:
// three manager processes and four worker processes, each in its own
// network namespace, and a producer process, with leaders killed,
// partitioned and wiped while tasks run. It has no code outside its
// tests.
package hatest
