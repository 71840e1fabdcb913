package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/task"
)

// Client is the admin API over HTTP: a task.Operator for a monitor's
// address (what `ceylon --url` uses). Refusals come back as the task
// package's named errors (errors.Is(err, task.ErrUnknownTask), …); a
// refused token as [ErrUnauthorized].
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

var _ task.Operator = (*Client)(nil)

// ErrUnauthorized reports a request the monitor refused for its token.
var ErrUnauthorized = errors.New("monitor: unauthorized (missing or wrong token)")

// ErrForbidden reports a request the monitor refused for where it came
// from (another host name, another origin).
var ErrForbidden = errors.New("monitor: forbidden")

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClientToken sends the bearer token with every request.
func WithClientToken(token string) ClientOption { return func(c *Client) { c.token = token } }

// WithHTTPClient uses hc (default: one with no overall timeout; every
// call's context bounds it).
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// NewClient is a client for the monitor at base ("http://127.0.0.1:8080").
func NewClient(base string, opts ...ClientOption) (*Client, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("monitor: client for %q: not a URL", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, hc: &http.Client{}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// do sends a request and decodes the JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	// path is escaped already (url.PathEscape of IDs): it goes on the
	// base's escaped form as it is.
	u := c.base.String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if method != http.MethodGet {
		body = bytes.NewReader([]byte("{}"))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("monitor: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("monitor: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		_ = json.Unmarshal(b, &e)
		switch {
		case resp.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%w: %s", ErrUnauthorized, e.Error)
		case resp.StatusCode == http.StatusGatewayTimeout:
			return fmt.Errorf("monitor: %s %s: the manager did not answer in time: %w", method, path, context.DeadlineExceeded)
		case e.Code == "forbidden":
			return fmt.Errorf("%w: %s", ErrForbidden, e.Error)
		case e.Code != "":
			return fmt.Errorf("monitor: %s %s: %w", method, path, task.ErrorFromCode(e.Code, e.Error))
		}
		return fmt.Errorf("monitor: %s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("monitor: %s %s: %w: %w", method, path, task.ErrRemote, err)
	}
	return nil
}

// Stats is the manager's snapshot.
func (c *Client) Stats(ctx context.Context) (task.Stats, error) {
	var s task.Stats
	return s, c.do(ctx, http.MethodGet, "/api/v1/stats", nil, &s)
}

// ListTasks lists the tasks that match f.
func (c *Client) ListTasks(ctx context.Context, f task.TaskFilter) (task.TaskPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "type": f.Type, "worker": f.Worker, "id": f.ID, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var p task.TaskPage
	return p, c.do(ctx, http.MethodGet, "/api/v1/tasks", q, &p)
}

// TaskDetail is everything the manager knows of task id.
func (c *Client) TaskDetail(ctx context.Context, id string) (task.TaskDetail, error) {
	var d task.TaskDetail
	return d, c.do(ctx, http.MethodGet, "/api/v1/tasks/"+url.PathEscape(id), nil, &d)
}

// Cancel cancels task id.
func (c *Client) Cancel(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/tasks/"+url.PathEscape(id)+"/cancel", nil, nil)
}

// Retry runs a failed or cancelled task again.
func (c *Client) Retry(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/tasks/"+url.PathEscape(id)+"/retry", nil, nil)
}

// Delete forgets a final task.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tasks/"+url.PathEscape(id), nil, nil)
}

// Pause stops the assignment of tasks of type typ.
func (c *Client) Pause(ctx context.Context, typ string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/types/"+url.PathEscape(typ)+"/pause", nil, nil)
}

// Resume undoes Pause.
func (c *Client) Resume(ctx context.Context, typ string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/types/"+url.PathEscape(typ)+"/resume", nil, nil)
}

// Revoke takes a grant back.
func (c *Client) Revoke(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/grants/"+url.PathEscape(id)+"/revoke", nil, nil)
}

// Workers lists the workers the manager has known.
func (c *Client) Workers(ctx context.Context) ([]task.WorkerView, error) {
	var ws []task.WorkerView
	return ws, c.do(ctx, http.MethodGet, "/api/v1/workers", nil, &ws)
}

// Series returns the samples taken at or after since.
func (c *Client) Series(ctx context.Context, since time.Time) ([]task.Sample, error) {
	q := url.Values{}
	if !since.IsZero() {
		q.Set("since", since.Format(time.RFC3339Nano))
	}
	var out []task.Sample
	return out, c.do(ctx, http.MethodGet, "/api/v1/series", q, &out)
}

// Events reads the event feed.
func (c *Client) Events(ctx context.Context, eq task.EventQuery) (task.EventPage, error) {
	q := url.Values{}
	if eq.After != 0 {
		q.Set("after", strconv.FormatUint(eq.After, 10))
	}
	if eq.Limit != 0 {
		q.Set("limit", strconv.Itoa(eq.Limit))
	}
	if eq.Wait != 0 {
		q.Set("wait", eq.Wait.String())
	}
	if eq.TaskID != "" {
		q.Set("task", eq.TaskID)
	}
	if eq.Feed != "" {
		q.Set("feed", eq.Feed)
	}
	var p task.EventPage
	return p, c.do(ctx, http.MethodGet, "/api/v1/events", q, &p)
}
