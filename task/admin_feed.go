package task

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ceylon-go/ceylon/agent"
)

// The event feed: the manager keeps its last EventFeedSize events, each
// with a sequence number, and [Manager.Events] reads them from a cursor,
// waiting for the next one if asked (a long poll: what `ceylon tail` and
// the dashboard's event list do). A reader that falls more than
// EventFeedSize events behind is told how many it missed.

// EventFeedSize is how many events the feed keeps.
const EventFeedSize = 4096

// MaxEventWait bounds EventQuery.Wait.
const MaxEventWait = 30 * time.Second

// maxParkedTails bounds the remote event requests a manager holds open.
const maxParkedTails = 256

// EventRecord is one event of the feed.
type EventRecord struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Type     string    `json:"type"` // an EventType's name: submitted, assigned, completed, …
	TaskID   string    `json:"task_id"`
	Attempt  int       `json:"attempt,omitempty"`
	Worker   string    `json:"worker,omitempty"`
	Error    string    `json:"error,omitempty"`
	Progress float64   `json:"progress,omitempty"`
	Message  string    `json:"message,omitempty"` // the progress message
}

// EventQuery reads the feed.
type EventQuery struct {
	// After is the last sequence number seen (0: from the oldest kept).
	After uint64 `json:"after,omitempty"`
	// Limit bounds the events returned (default and maximum 1000).
	Limit int `json:"limit,omitempty"`
	// Wait is how long to wait for an event when none is there yet (at
	// most MaxEventWait; 0 answers at once).
	Wait time.Duration `json:"wait_ns,omitempty"`
	// TaskID, if set, keeps only that task's events.
	TaskID string `json:"task_id,omitempty"`
	// Feed is the EventPage.Feed the After came from: a cursor from
	// another feed (another run of the manager, another leader) reads
	// from the oldest event kept instead.
	Feed string `json:"feed,omitempty"`
}

// EventPage is what a read of the feed returns.
type EventPage struct {
	Events []EventRecord `json:"events"`
	// Next is the After of the next read.
	Next uint64 `json:"next"`
	// Missed counts the events after the query's After that the feed no
	// longer holds (the reader fell behind).
	Missed uint64 `json:"missed,omitempty"`
	// Last is the newest event's sequence number (an After that reads
	// only what comes next).
	Last uint64 `json:"last"`
	// Feed identifies the feed the sequence numbers belong to (pass it
	// back in EventQuery.Feed).
	Feed string `json:"feed"`
}

// eventFeed is the ring of recent events. Owned by the actor.
type eventFeed struct {
	id     string        // this feed's identity (random, per manager run)
	due    time.Time     // the earliest end of a parked request's wait
	buf    []EventRecord // EventFeedSize once the first event came
	seq    uint64        // the last sequence number given
	wake   chan struct{} // closed at the next event, when someone waits
	parked []parkedTail  // remote readers waiting for an event
	posted bool          // answerTails is posted
}

type parkedTail struct {
	ctx   agent.Context
	q     EventQuery
	until time.Time
}

func (f *eventFeed) init() {
	if f.buf == nil {
		f.buf = make([]EventRecord, EventFeedSize)
		f.id = strconv.FormatUint(rand.Uint64(), 36)
	}
}

func (f *eventFeed) add(ev Event) {
	f.init()
	f.seq++
	f.buf[f.seq%EventFeedSize] = EventRecord{Seq: f.seq, Time: time.Now(), Type: ev.Type.String(), TaskID: ev.TaskID,
		Attempt: ev.Attempt, Worker: ev.Worker, Error: ev.Err, Progress: ev.Progress, Message: ev.ProgressMessage}
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
}

func (q EventQuery) check() (EventQuery, error) {
	switch {
	case q.Limit < 0:
		return q, fmt.Errorf("%w: limit %d", ErrBadFilter, q.Limit)
	case q.Wait < 0:
		return q, fmt.Errorf("%w: wait %v", ErrBadFilter, q.Wait)
	case q.Limit == 0 || q.Limit > 1000:
		q.Limit = 1000
	}
	q.Wait = min(q.Wait, MaxEventWait)
	return q, nil
}

// read returns the events after q.After.
func (f *eventFeed) read(q EventQuery) EventPage {
	f.init()
	after := q.After
	if after > f.seq || q.Feed != "" && q.Feed != f.id { // a cursor from another feed: start over
		after = 0
	}
	from := after + 1
	var page EventPage
	if oldest := f.oldest(); from < oldest {
		page.Missed = oldest - from
		from = oldest
	}
	s := from
	for ; s <= f.seq && len(page.Events) < q.Limit; s++ {
		if r := f.buf[s%EventFeedSize]; q.TaskID == "" || r.TaskID == q.TaskID {
			page.Events = append(page.Events, r)
		}
	}
	page.Next, page.Last, page.Feed = s-1, f.seq, f.id
	return page
}

// oldest is the smallest sequence number the feed holds.
func (f *eventFeed) oldest() uint64 {
	if f.seq < EventFeedSize {
		return 1
	}
	return f.seq - EventFeedSize + 1
}

// waiter is a channel closed at the next event.
func (f *eventFeed) waiter() <-chan struct{} {
	if f.wake == nil {
		f.wake = make(chan struct{})
	}
	return f.wake
}

// Events reads the manager's event feed after q.After; with q.Wait it
// waits that long for the first event to come. A cancelled ctx returns
// its error.
func (m *Manager) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	q, err := q.check()
	if err != nil {
		return EventPage{}, err
	}
	deadline := time.Now().Add(q.Wait)
	for {
		type result struct {
			page EventPage
			wake <-chan struct{}
		}
		r, err := agent.Call(ctx, m.agent, func() (result, error) {
			if !m.leading {
				return result{}, m.notLeader()
			}
			p := m.feed.read(q)
			if len(p.Events) > 0 || q.Wait == 0 {
				return result{page: p}, nil
			}
			return result{page: p, wake: m.feed.waiter()}, nil
		})
		if err != nil || r.wake == nil {
			return r.page, err
		}
		q.After, q.Feed = r.page.Next, r.page.Feed
		left := time.Until(deadline)
		if left <= 0 {
			return r.page, nil
		}
		t := time.NewTimer(left)
		select {
		case <-r.wake:
			t.Stop()
		case <-t.C:
			return r.page, nil
		case <-ctx.Done():
			t.Stop()
			return EventPage{}, ctx.Err()
		}
	}
}
