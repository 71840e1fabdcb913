package task

import (
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/robfig/cron/v3"
	bolt "go.etcd.io/bbolt"
)

// keyPeriodic holds the periodic tasks' last runs in the journal's meta
// bucket.
var keyPeriodic = []byte("periodic")

// periodic is one task registered with WithPeriodic. Owned by the actor.
type periodic struct {
	name     string
	schedule cron.Schedule
	template messages.Task
	last     time.Time // the fire time of the last run submitted, or when counting began (none yet)
	next     time.Time
}

// WithPeriodic registers a periodic task: each time spec fires (a cron
// expression of five fields, "@hourly", "@every 10m", …; a leading seconds
// field is allowed too), the manager submits a copy of template whose ID is
// "<name>@<fire time>" (so a run is submitted once, whatever happens). The
// last run is journaled: runs missed while the manager was down are made
// up by one run when it starts again, not one per missed time.
func WithPeriodic(name, spec string, template messages.Task) ManagerOption {
	return func(c *managerConfig) error {
		if name == "" {
			return fmt.Errorf("task: periodic task without a name")
		}
		sched, err := cronParser.Parse(spec)
		if err != nil {
			return fmt.Errorf("task: periodic task %q: %w", name, err)
		}
		template.ID = name // checked as a task when it is first submitted
		if template.Description == "" {
			template.Description = "periodic " + name
		}
		if err := template.Validate(); err != nil {
			return fmt.Errorf("task: periodic task %q: %w", name, err)
		}
		c.periodic = append(c.periodic, &periodic{name: name, schedule: sched, template: template})
		return nil
	}
}

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// startPeriodic sets each periodic task's next run from its journaled last
// run: a run missed while the manager was down is due at once. A task
// that never ran counts from now, and that is journaled at the first
// sweep, so that its first run, if missed by a restart or a failover, is
// made up too. Called by Start, and by a manager taking the lead, before
// it sweeps.
func (m *Manager) startPeriodic(last map[string]time.Time) {
	now := time.Now()
	for _, p := range m.cfg.periodic {
		p.last = last[p.name]
		if p.last.IsZero() {
			p.last = now
			m.periodicNew = true
		}
		if next := p.schedule.Next(p.last); !next.After(now) {
			p.next = next // missed: one run now
		} else {
			p.next = next
		}
	}
}

// runPeriodic submits the periodic tasks that are due, one run each
// however many times they were due. Only called in the actor (sweep).
func (m *Manager) runPeriodic(now time.Time) {
	fired := false
	for _, p := range m.cfg.periodic {
		if p.next.IsZero() || now.Before(p.next) {
			continue
		}
		t := p.template
		t.ID = fmt.Sprintf("%s@%s", p.name, p.next.UTC().Format(time.RFC3339Nano))
		if err := m.accept([]Submission{{Task: t}}); err != nil {
			m.agent.Logger().Warn("periodic task not submitted", "task", t.ID, "err", err)
		}
		p.last = p.next
		p.next = p.schedule.Next(now)
		fired = true
	}
	if (fired || m.periodicNew) && m.cfg.journal != nil {
		m.periodicNew = false
		last := make(map[string]time.Time, len(m.cfg.periodic))
		for _, p := range m.cfg.periodic {
			last[p.name] = p.last
		}
		v, err := messages.MarshalValue(last)
		if err != nil {
			m.agent.Logger().Error("periodic runs not journaled", "err", err)
			return
		}
		m.jputs = append(m.jputs, journalPut{bucket: string(bucketMeta), key: keyPeriodic, value: v})
		m.queueFlush()
	}
}

// loadPeriodic reads the periodic tasks' last runs.
func (j *Journal) loadPeriodic() (map[string]time.Time, error) {
	var out map[string]time.Time
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyPeriodic)
		if v == nil {
			return nil
		}
		if err := messages.Unmarshal(v, &out); err != nil {
			return fmt.Errorf("%w: %s: periodic runs: %w", ErrJournalCorrupt, j.path, err)
		}
		return nil
	})
	return out, err
}
