package testutil

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
)

// RunAsCommand lets a package main's test binary stand in for the command
// itself, so tests that start the command as a process of its own need no
// `go build` (and no second link of every dependency): call it first in
// TestMain. Started under the name name (through the link CommandLink
// makes), the binary runs main and exits with status 0 when main returns;
// under any other name RunAsCommand returns at once.
//
// The testing package's -test.* flags are taken off flag.CommandLine
// first, so the command parses, lists and refuses its flags as a build of
// its own does.
func RunAsCommand(name string, main func()) {
	if filepath.Base(os.Args[0]) != name {
		return
	}
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Name, "test.") {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	flag.CommandLine = fs
	main()
	os.Exit(0)
}

// CommandLink makes a link named name in dir to the running test binary
// and returns its path: started through it, the binary is the command
// (see RunAsCommand), built as the tests are: with the race detector when
// the tests are (make test), without it under a plain go test.
func CommandLink(dir, name string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	link := filepath.Join(dir, name)
	if err := os.Symlink(exe, link); err != nil {
		return "", err
	}
	return link, nil
}
