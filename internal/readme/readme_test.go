// Package readme checks that every Go block in the project's README
// compiles: each block becomes a program (its type and func declarations
// at the top level, its statements in a function given ctx) and the
// programs are type-checked with go vet.
package readme

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// imports a block may use, by the selector that shows it does.
var imports = map[string]string{
	"fmt.":        "fmt",
	"time.":       "time",
	"os.":         "os",
	"errors.":     "errors",
	"agent.":      "github.com/ceylon-go/ceylon/agent",
	"task.":       "github.com/ceylon-go/ceylon/task",
	"messages.":   "github.com/ceylon-go/ceylon/messages",
	"playground.": "github.com/ceylon-go/ceylon/playground",
	"peer.":       "github.com/ceylon-go/ceylon/peer",
	"monitor.":    "github.com/ceylon-go/ceylon/monitor",
}

// blocks returns the README's Go blocks.
func blocks(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur []string
	in := false
	for _, l := range strings.Split(string(src), "\n") {
		switch {
		case !in && strings.TrimSpace(l) == "```go":
			in, cur = true, nil
		case in && strings.TrimSpace(l) == "```":
			in = false
			out = append(out, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, l)
		}
	}
	return out
}

// program turns a block into a compilable file.
func program(block string) string {
	var top, body []string
	depth := 0
	inTop := false
	for _, l := range strings.Split(block, "\n") {
		if depth == 0 && (strings.HasPrefix(l, "type ") || strings.HasPrefix(l, "func ")) {
			inTop = true
		}
		if inTop {
			top = append(top, l)
		} else {
			body = append(body, l)
		}
		depth += strings.Count(l, "{") - strings.Count(l, "}")
		if inTop && depth == 0 {
			inTop = false
		}
	}
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"context\"\n")
	for sel, path := range imports {
		if strings.Contains(block, sel) {
			fmt.Fprintf(&b, "\t%q\n", path)
		}
	}
	b.WriteString(")\n\n")
	b.WriteString(strings.Join(top, "\n"))
	b.WriteString("\n\nfunc run(ctx context.Context) {\n")
	b.WriteString(strings.Join(body, "\n"))
	b.WriteString("\n}\n\nfunc main() { run(context.Background()) }\n")
	return b.String()
}

func TestGoBlocksCompile(t *testing.T) {
	t.Parallel()
	bs := blocks(t)
	if len(bs) == 0 {
		t.Fatal("no Go blocks found")
	}
	dir, err := os.MkdirTemp(".", "blocks-") // inside the module, so imports resolve
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for i, b := range bs {
		d := filepath.Join(dir, fmt.Sprint("b", i+1))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "main.go"), []byte(program(b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("go", "vet", "./"+dir+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("README Go blocks do not compile: %v\n%s", err, out)
	}
}
