package task

import (
	"encoding/json"
	"testing"

	"github.com/ceylon-go/ceylon/messages"
)

// FuzzAdminRequest feeds the admin requests' decoders what a member of
// the workspace may send: the envelope, then each operation's argument,
// through the checks the manager runs and a read of a wrapped-around
// event feed. None may panic; a read returns at most the limit, in order.
func FuzzAdminRequest(f *testing.F) {
	for _, req := range []messages.AdminRequest{
		{Op: messages.AdminTasks, Body: []byte(`{"status":"failed","type":"t","cursor":"12","limit":2}`)},
		{Op: messages.AdminEvents, Body: []byte(`{"after":4000,"limit":10,"wait_ns":1000,"task_id":"x"}`)},
		{Op: messages.AdminTask, Body: []byte(`{"id":"a"}`)},
		{Op: messages.AdminSeries, Body: []byte(`{"since":"2026-01-02T03:04:05Z"}`)},
		{Op: "bogus"},
	} {
		b, err := req.MarshalMsg(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var feed eventFeed
	for i := range EventFeedSize + 100 {
		feed.add(Event{Type: EventType(i % 9), TaskID: string(rune('a' + i%3))})
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req messages.AdminRequest
		if _, err := req.UnmarshalMsg(b); err != nil || req.Validate() != nil {
			return
		}
		var tf TaskFilter
		if decodeArg(req.Body, &tf) == nil {
			if match, limit, _, err := tf.compile(); err == nil {
				if limit < 1 || limit > MaxPageSize {
					t.Fatalf("limit %d", limit)
				}
				match(&taskState{task: messages.Task{ID: "a", Type: "t"}})
			}
		}
		var q EventQuery
		if decodeArg(req.Body, &q) == nil {
			if q, err := q.check(); err == nil {
				p := feed.read(q)
				if len(p.Events) > q.Limit || p.Next > feed.seq {
					t.Fatalf("read %+v: %d events, next %d", q, len(p.Events), p.Next)
				}
				for i := 1; i < len(p.Events); i++ {
					if p.Events[i].Seq <= p.Events[i-1].Seq {
						t.Fatalf("out of order: %+v", p.Events)
					}
				}
			}
		}
		var target messages.AdminTarget
		_ = decodeArg(req.Body, &target)
		if _, err := json.Marshal(target); err != nil {
			t.Fatal(err)
		}
	})
}
