package messages

import (
	"errors"
	"testing"
)

func TestTaskValidate(t *testing.T) {
	t.Parallel()
	ok := Task{ID: "t", Type: "w", Description: "d", Difficulty: 5}
	cases := []struct {
		name string
		edit func(*Task)
		want error
	}{
		{"valid", func(*Task) {}, nil},
		{"unrated", func(t *Task) { t.Difficulty = 0 }, nil},
		{"empty id", func(t *Task) { t.ID = "" }, ErrEmptyID},
		{"empty type", func(t *Task) { t.Type = "" }, ErrEmptyType},
		{"no description", func(t *Task) { t.Description = "" }, nil},
		{"difficulty 11", func(t *Task) { t.Difficulty = 11 }, ErrDifficultyRange},
		{"difficulty -1", func(t *Task) { t.Difficulty = -1 }, ErrDifficultyRange},
		{"negative timeout", func(t *Task) { t.Timeout = -1 }, ErrNegativeValue},
		{"retries below NoRetry", func(t *Task) { t.MaxRetries = -2 }, ErrNegativeValue},
		{"no retry", func(t *Task) { t.MaxRetries = NoRetry }, nil},
		{"self dependency", func(t *Task) { t.Dependencies = []string{"t"} }, ErrSelfDependency},
		{"duplicate dependency", func(t *Task) { t.Dependencies = []string{"a", "a"} }, ErrDuplicateDependency},
		{"bad backoff", func(t *Task) { t.Backoff = "random" }, ErrMalformed},
	}
	for _, c := range cases {
		task := ok
		c.edit(&task)
		if err := task.Validate(); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestResultAndAssignmentValidate(t *testing.T) {
	t.Parallel()
	task := Task{ID: "t", Type: "w", Description: "d"}
	if err := (&TaskAssignment{Task: task}).Validate(); !errors.Is(err, ErrBadAttempt) {
		t.Errorf("attempt 0: %v", err)
	}
	if err := (&TaskAssignment{Task: task, Attempt: 1}).Validate(); err != nil {
		t.Errorf("valid assignment: %v", err)
	}
	cases := []struct {
		r    TaskResult
		want error
	}{
		{TaskResult{TaskID: "t", Attempt: 1, Worker: "w"}, nil},
		{TaskResult{Attempt: 1, Worker: "w"}, ErrEmptyID},
		{TaskResult{TaskID: "t", Worker: "w"}, ErrBadAttempt},
		{TaskResult{TaskID: "t", Attempt: 1}, ErrEmptyWorker},
		{TaskResult{TaskID: "t", Attempt: 1, Worker: "w", Children: []Task{{ID: "c"}}}, ErrEmptyType},
	}
	for i, c := range cases {
		if err := c.r.Validate(); !errors.Is(err, c.want) {
			t.Errorf("case %d: got %v, want %v", i, err, c.want)
		}
	}
	if err := (&WorkerInfo{Name: "w", Skill: 11, MaxConcurrency: 1}).Validate(); !errors.Is(err, ErrDifficultyRange) {
		t.Errorf("worker skill: %v", err)
	}
}
