package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/queue"
	"github.com/sluice-relay/sluice/internal/tracking"
)

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Error is the body of every failed API request.
type Error struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(Error{Error: msg})
}

// readJSON decodes a small request body strictly.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

// queueError maps the queue's operator errors to HTTP.
func queueError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, queue.ErrNoQueue), errors.Is(err, queue.ErrNoMessage):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, queue.ErrInFlight):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusBadRequest, err.Error())
	}
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.o.Queue.Queues())
}

// queueIdentity is the identity of the queue an admin typed, matched as
// Get-Queue matches: in any case, spaces around it ignored. A name no
// queue has is returned trimmed, to be answered with ErrNoQueue.
func (s *Server) queueIdentity(typed string) string {
	typed = strings.TrimSpace(typed)
	if _, ok := s.o.Queue.QueueByName(typed); ok {
		return typed
	}
	for _, qi := range s.o.Queue.Queues() {
		if strings.EqualFold(qi.Identity, typed) {
			return qi.Identity
		}
	}
	return typed
}

func (s *Server) showQueue(w http.ResponseWriter, r *http.Request) {
	qi, ok := s.o.Queue.QueueByName(s.queueIdentity(r.PathValue("identity")))
	if !ok {
		queueError(w, queue.ErrNoQueue)
		return
	}
	writeJSON(w, qi)
}

// QueueAction is the body of POST /api/v1/queue-actions/{retry|suspend|resume}.
type QueueAction struct {
	Identity string `json:"identity"`
}

func (s *Server) queueAction(w http.ResponseWriter, r *http.Request) {
	var req QueueAction
	if !readJSON(w, r, &req) {
		return
	}
	req.Identity = s.queueIdentity(req.Identity)
	var err error
	action := r.PathValue("action")
	switch action {
	case "retry":
		err = s.o.Queue.RetryQueue(req.Identity)
	case "suspend":
		err = s.o.Queue.SuspendQueue(req.Identity)
	case "resume":
		err = s.o.Queue.ResumeQueue(req.Identity)
	default:
		writeError(w, http.StatusNotFound, "unknown queue action "+strconv.Quote(action)+"; use retry, suspend or resume")
		return
	}
	if err != nil {
		queueError(w, err)
		return
	}
	s.o.Log.Info("queue "+action+" by operator", "queue", req.Identity, "client", r.RemoteAddr)
	qi, ok := s.o.Queue.QueueByName(req.Identity)
	if !ok {
		// Resuming a queue with no message left drops it: it is empty,
		// and one that gets a message again starts Ready.
		qi = queue.QueueInfo{Identity: req.Identity, Status: queue.HopReady}
	}
	writeJSON(w, qi)
}

// listMessages filters by queue, sender, recipient (case-insensitive) and
// status.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	f := r.URL.Query()
	qname, sender, rcpt, status := f.Get("queue"), f.Get("sender"), f.Get("recipient"), f.Get("status")
	if qname != "" {
		qname = s.queueIdentity(qname)
	}
	limit, _ := strconv.Atoi(f.Get("limit"))
	if limit <= 0 {
		limit = 1000
	}
	msgs := s.o.Queue.Messages(func(m *queue.MessageInfo) bool {
		if sender != "" && !strings.EqualFold(m.From, sender) {
			return false
		}
		if status != "" && !strings.EqualFold(m.Status, status) {
			return false
		}
		if qname != "" && !slices.Contains(m.Queues, qname) {
			return false
		}
		if rcpt != "" {
			found := false
			for _, ri := range m.Recipients {
				found = found || strings.EqualFold(ri.Address, rcpt)
			}
			if !found {
				return false
			}
		}
		return true
	})
	// The oldest: Messages sorts what passes, so cut only after it.
	if len(msgs) > limit {
		msgs = msgs[:limit]
	}
	writeJSON(w, msgs)
}

// messageID reads the {id} of a request as an admin types it: with a
// space around it or in capitals. Anything else that is no Sluice id (a
// Message-ID header, say) is answered as such, not as a message that may
// have been delivered already.
func messageID(w http.ResponseWriter, r *http.Request) (mail.ID, bool) {
	typed := r.PathValue("id")
	id, err := mail.ParseID(strings.ToLower(strings.TrimSpace(typed)))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a message id: Sluice's ids are 16 characters of 0-9 and a-v, as sluice message list shows them (sluice track --message-id finds a message by its Message-ID)", typed))
		return "", false
	}
	return id, true
}

func (s *Server) showMessage(w http.ResponseWriter, r *http.Request) {
	id, ok := messageID(w, r)
	if !ok {
		return
	}
	mi, ok := s.o.Queue.Message(id)
	if !ok {
		queueError(w, queue.ErrNoMessage)
		return
	}
	writeJSON(w, mi)
}

// MessageRetried answers a message retry: the message, and what the
// retry did to its queues (a queue in Retry is tried now too).
type MessageRetried struct {
	queue.MessageInfo
	queue.Retried
}

// MessageAction is the body of POST /api/v1/messages/{id}/{retry|remove|redirect}.
type MessageAction struct {
	Bounce bool     `json:"bounce,omitempty"` // remove: send the sender an NDR
	To     []string `json:"to,omitempty"`     // redirect: the new recipients
}

func (s *Server) messageAction(w http.ResponseWriter, r *http.Request) {
	id, ok := messageID(w, r)
	if !ok {
		return
	}
	var req MessageAction
	if r.ContentLength != 0 && !readJSON(w, r, &req) {
		return
	}
	var err error
	var retried *queue.Retried
	action := r.PathValue("action")
	switch action {
	case "retry":
		var done queue.Retried
		done, err = s.o.Queue.RetryMessage(id)
		retried = &done
	case "remove":
		if mi, ok := s.o.Queue.Message(id); ok && req.Bounce && mi.From == mail.Null.String() {
			// Never bounce <>: the queue would remove it silently while
			// the admin is told the sender was notified.
			writeError(w, http.StatusBadRequest, fmt.Sprintf("message %s is from <> (itself a notice): there is no sender to send a non-delivery report to; remove it without --bounce", id))
			return
		}
		err = s.o.Queue.RemoveMessage(r.Context(), id, req.Bounce)
	case "redirect":
		var to []mail.Address
		for _, a := range req.To {
			addr, perr := mail.ParseMailbox(strings.Trim(strings.TrimSpace(a), "<>"), true)
			if perr != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not an e-mail address: %v", a, perr))
				return
			}
			to = append(to, addr)
		}
		err = s.o.Queue.RedirectMessage(r.Context(), id, to)
	default:
		writeError(w, http.StatusNotFound, "unknown message action "+strconv.Quote(action)+"; use retry, remove or redirect")
		return
	}
	if err != nil {
		queueError(w, err)
		return
	}
	args := []any{"msg", id, "client", r.RemoteAddr, "bounce", req.Bounce, "to", strings.Join(req.To, ",")}
	if retried != nil && len(retried.InRetry) > 0 {
		args = append(args, "queues_in_retry", strings.Join(retried.InRetry, ","))
	}
	s.o.Log.Info("message "+action+" by operator", args...)
	if mi, ok := s.o.Queue.Message(id); ok {
		if retried != nil {
			writeJSON(w, MessageRetried{mi, *retried})
			return
		}
		writeJSON(w, mi)
		return
	}
	writeJSON(w, map[string]string{"id": string(id), "status": "gone from the queue"})
}

// track serves tracking.Search over this node's tracking log.
func (s *Server) track(w http.ResponseWriter, r *http.Request) {
	f := r.URL.Query()
	q := tracking.Query{Sender: f.Get("sender"), Recipient: f.Get("recipient"), MessageID: f.Get("message_id"),
		Event: tracking.EventType(strings.ToUpper(f.Get("event")))}
	for key, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if v := f.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, key+": give an RFC 3339 time, e.g. 2026-11-24T14:00:00Z")
				return
			}
			*dst = t
		}
	}
	q.Limit, _ = strconv.Atoi(f.Get("limit"))
	if s.o.FlushTracking != nil {
		s.o.FlushTracking()
	}
	events, err := tracking.Search(s.trackingDir(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot search the tracking log: "+err.Error())
		return
	}
	if events == nil {
		events = []tracking.Event{}
	}
	writeJSON(w, events)
}

func (s *Server) trackingDir() string { return filepath.Join(s.cfg.Load().Node.DataDir, "tracking") }

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	fs := []health.Finding{}
	if s.o.Health != nil {
		fs = append(fs, s.o.Health()...)
	}
	writeJSON(w, Health{Status: health.Worst(fs), Findings: fs})
}

// TestSend is the body of POST /api/v1/test-send.
type TestSend struct {
	From    string   `json:"from"`
	To      []string `json:"to"`
	Via     string   `json:"via,omitempty"` // send connector; "" routes by address space
	Subject string   `json:"subject,omitempty"`
}

// TestSent is the answer: the queued message's ids, to follow in tracking.
type TestSent struct {
	ID        mail.ID  `json:"id"`
	MessageID string   `json:"message_id"`
	Queues    []string `json:"queues"`
}

// testSend queues a small test message as if a client had sent it, so
// the admin can follow it through the send connector (sluice test send).
func (s *Server) testSend(w http.ResponseWriter, r *http.Request) {
	var req TestSend
	if !readJSON(w, r, &req) {
		return
	}
	cfg := s.cfg.Load()
	from, _, err := mail.ParsePath("<"+strings.Trim(req.From, "<>")+">", true, true)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("from %q is not an e-mail address: %v", req.From, err))
		return
	}
	if len(req.To) == 0 {
		writeError(w, http.StatusBadRequest, "give at least one recipient (--to)")
		return
	}
	if req.Via != "" {
		// Matched as a queue identity is: in any case, spaces around it ignored.
		sc := cfg.SendConnectorNamed(strings.TrimSpace(req.Via))
		if sc == nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("no send connector is called %q; the config has %s", req.Via, connectorNames(cfg)))
			return
		}
		req.Via = sc.Name // the queue, tracking and the log use the config's spelling
	}
	env := &mail.Envelope{ID: mail.NewID(), From: from, Received: time.Now(), Via: req.Via,
		Origin: mail.Origin{Connector: "(sluice test send)", AuthUser: "admin API " + r.RemoteAddr}}
	var to []string
	for _, a := range req.To {
		addr, err := mail.ParseMailbox(strings.Trim(a, "<>"), true)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("to %q is not an e-mail address: %v", a, err))
			return
		}
		env.Rcpts = append(env.Rcpts, mail.Recipient{Addr: addr})
		to = append(to, addr.String())
	}
	subject := req.Subject
	if strings.ContainsAny(subject, "\r\n") {
		writeError(w, http.StatusBadRequest, "the subject must be one line: a line break would add header lines to the message")
		return
	}
	if subject == "" {
		subject = "Sluice test message " + string(env.ID)
	}
	env.MessageID = "<" + string(env.ID) + ".test@" + cfg.Node.Hostname + ">"
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		from.String(), strings.Join(to, ", "), subject, env.Received.Format(time.RFC1123Z), env.MessageID)
	fmt.Fprintf(&b, "This is a test message sent with 'sluice test send' from %s.\r\nQueued as %s at %s.\r\n",
		cfg.Node.Hostname, env.ID, env.Received.UTC().Format(time.RFC3339))
	env.SMTPUTF8 = !mail.ASCII(b.Bytes())
	if err := s.o.Queue.Put(r.Context(), env, &b); err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot queue the test message: "+err.Error())
		return
	}
	s.o.Log.Info("test message queued", "msg", env.ID, "from", from.String(), "to", strings.Join(to, ","), "via", req.Via)
	out := TestSent{ID: env.ID, MessageID: env.MessageID}
	if mi, ok := s.o.Queue.Message(env.ID); ok {
		out.Queues = mi.Queues
	}
	writeJSON(w, out)
}

func connectorNames(cfg *config.Config) string {
	return strings.Join(cfg.SendConnectorNames(), ", ")
}

// reload reads the config file again and applies it (POST /api/v1/reload),
// as SIGHUP does; Windows has no SIGHUP. A refused reload is a result,
// not an HTTP error: 200 with reloaded false and the problems.
func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.o.Reload == nil {
		writeError(w, http.StatusNotImplemented, "this Sluice cannot reload through the admin API; send it SIGHUP or restart it")
		return
	}
	s.o.Log.Info("reload asked for through the admin API", "client", r.RemoteAddr)
	res, err := s.o.Reload(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "no reload: "+err.Error())
		return
	}
	writeJSON(w, res)
}
