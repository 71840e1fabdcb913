package agent

// SendAfterStop sends a message to a's actor the way a frame arriving
// during Stop does (straight to its PID, past the started check): once the
// actor is gone it is a dead letter.
func SendAfterStop(a *Agent) { a.system.Root.Send(a.pid, func() {}) }
