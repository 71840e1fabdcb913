package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "pipeline")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "pipeline")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

func build(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := buildOnce(); err == nil {
		_ = os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func TestPipelineRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := build(t)
	out, err := exec.CommandContext(ctx, bin, "-chunks", "16", "-size", "10000", "-work", "1ms").CombinedOutput()
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{
		"pipeline: 1 preparation -> 16 processing -> 1 aggregation",
		"tasks 18/18 (100%)",
		"result: sum of squares 1..10000 = 333383335000 (expected 333383335000)",
		"tasks: 18 submitted, 18 succeeded, 0 failed",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A producer in a process of its own submits the pipeline to a playground
// that serves producers (-serve) and gets the right result.
func TestProducerProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := build(t)
	pg := exec.CommandContext(ctx, bin, "-serve", "-workspace", "producers", "-work", "1ms")
	out, err := pg.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Process.Kill(); _ = pg.Wait() })
	var addr string
	sc := bufio.NewScanner(out)
	for addr == "" && sc.Scan() {
		if m := regexp.MustCompile(`-join (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if addr == "" {
		t.Fatal("the playground printed no address")
	}
	res, err := exec.CommandContext(ctx, bin, "-role", "producer", "-workspace", "producers", "-join", addr, "-name", "p1",
		"-chunks", "8", "-size", "1000").CombinedOutput()
	if err != nil || !strings.Contains(string(res), "producer p1: result: sum of squares 1..1000 = 333833500 (expected 333833500)") {
		t.Fatalf("producer: %v\n%s", err, res)
	}
}
