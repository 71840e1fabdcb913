package messages

// Remote producers of a playground: any member of the workspace adds
// tasks with dependencies (a whole DAG, or more of one) to a playground
// and waits for their results, as playground.Client does. The playground
// answers on its task manager's agent; its errors travel as codes.
//
// The codecs of the types in this file are generated (graph_gen.go).
//
//msgp:tag msgpack

import "fmt"

// GraphSubmit asks a playground to add a batch of tasks atomically; the
// reply (GraphSubmitted) comes once the batch is durable.
type GraphSubmit struct {
	Tasks []Task `msgpack:"tasks"` // at most MaxSubmitBatch (Validate)
}

// Kind implements Message.
func (GraphSubmit) Kind() string { return "ceylon.playground.submit" }

// Validate checks the batch's size (the playground checks the tasks: it
// fills in empty IDs).
func (g GraphSubmit) Validate() error {
	if len(g.Tasks) == 0 || len(g.Tasks) > MaxSubmitBatch {
		return fmt.Errorf("graph submit: %w: %d tasks (1 to %d)", ErrMalformed, len(g.Tasks), MaxSubmitBatch)
	}
	return nil
}

// GraphSubmitted answers a GraphSubmit: the batch's IDs, or why it was
// refused (all of it).
type GraphSubmitted struct {
	IDs     []string `msgpack:"ids,omitempty,allownil"`
	Outcome Outcome  `msgpack:"outcome,omitempty"`
}

// Kind implements Message.
func (GraphSubmitted) Kind() string { return "ceylon.playground.submitted" }

// GraphWait asks a playground for a task's result, once it is final.
type GraphWait struct {
	ID string `msgpack:"id"`
}

// Kind implements Message.
func (GraphWait) Kind() string { return "ceylon.playground.wait" }

// GraphResult is a final task's result, with the playground's error for
// it (a dependency failed, a child failed, …) as an outcome.
type GraphResult struct {
	Result  TaskResult `msgpack:"result"`
	Outcome Outcome    `msgpack:"outcome,omitempty"`
}

// Kind implements Message.
func (GraphResult) Kind() string { return "ceylon.playground.result" }
