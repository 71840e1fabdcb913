// Package progress prints the progress of a long run: a bar redrawn in
// place when the output is a terminal, plain lines otherwise.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Reporter prints progress towards a total.
type Reporter struct {
	w     io.Writer
	tty   bool
	start time.Time
	label string

	mu       sync.Mutex
	lastLine time.Time
}

// New returns a reporter for w. It draws a bar when w is a terminal.
func New(w io.Writer, label string) *Reporter {
	return &Reporter{w: w, tty: IsTerminal(w), start: time.Now(), label: label}
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Line renders one progress line: done/total, percentage, rate, elapsed.
func Line(label string, done, total, failed int, elapsed time.Duration) string {
	pct := 0.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	line := fmt.Sprintf("%s %d/%d (%.0f%%) %.0f/s elapsed %v", label, done, total, pct, rate, elapsed.Round(10*time.Millisecond))
	if failed > 0 {
		line += fmt.Sprintf(", %d failed", failed)
	}
	return line
}

// Update prints the current state: on a terminal it redraws the bar in
// place; otherwise it prints a line at most once a second, and always for
// the final update (done == total).
func (r *Reporter) Update(done, total, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el := time.Since(r.start)
	line := Line(r.label, done, total, failed, el)
	if r.tty {
		const width = 30
		filled := 0
		if total > 0 {
			filled = width * done / total
		}
		fmt.Fprintf(r.w, "\r[%s%s] %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), line)
		if done >= total {
			fmt.Fprintln(r.w)
		}
		return
	}
	if done < total && time.Since(r.lastLine) < time.Second {
		return
	}
	r.lastLine = time.Now()
	fmt.Fprintln(r.w, line)
}
