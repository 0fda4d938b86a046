package admin

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/metrics"
	"github.com/sluice-relay/sluice/internal/queue"
)

// Options are what the admin API serves.
type Options struct {
	Queue   *queue.Queue
	Metrics *metrics.Metrics
	Log     *slog.Logger
	// Health evaluates the health rules now; nil reports none.
	Health func() []health.Finding
	// Ready says why Sluice cannot take mail now (nil: it can).
	Ready func() error
	// FlushTracking makes the events recorded so far searchable: the
	// tracking log writes its buffer every 200 ms, and a search right
	// after a message (sluice test send follows its message so) would
	// miss the latest. Nil: none.
	FlushTracking func()
	// Reload reads the config file again and applies it, as SIGHUP does;
	// nil: the API offers no reload.
	Reload func(context.Context) (ReloadResult, error)
}

// ReloadResult is what a reload did.
type ReloadResult struct {
	Reloaded bool     `json:"reloaded"`
	Problems []string `json:"problems,omitempty"` // why it was refused; the running config is kept
	// RestartOnly names changed sections a reload does not apply (log,
	// logs, admin): they wait for a restart.
	RestartOnly []string `json:"restart_only,omitempty"`
}

// Health is the health report as the API serves it.
type Health struct {
	Status   health.Severity  `json:"status"` // healthy, warning or error
	Findings []health.Finding `json:"findings"`
}

// Server is the admin API.
type Server struct {
	o        Options
	cfg      atomic.Pointer[config.Config]
	srv      *http.Server
	ln       net.Listener
	token    []byte
	stopping atomic.Bool
	// needCert: the listener demands client certificates (admin.client_ca
	// at Start). Like the token and the listener, it changes only with a
	// restart, so a reload cannot leave the API without credentials.
	needCert bool
}

// New builds the API for cfg; Start serves it.
func New(o Options, cfg *config.Config) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o}
	s.cfg.Store(cfg)
	return s
}

// Apply makes cfg the config the API reports from. The listener itself
// only changes with a restart.
func (s *Server) Apply(cfg *config.Config) { s.cfg.Store(cfg) }

// idleTimeout closes a kept-alive connection that no request came on
// for this long (a variable for tests). Without it every connection a
// client left open (a scraper restarted often, a script) held a file
// descriptor for as long as Sluice ran.
var idleTimeout = 2 * time.Minute

// Start listens on admin.listen. It returns an error that names the
// address when it cannot.
func (s *Server) Start(cfg *config.Config) error {
	a := cfg.Admin
	if a.Off() {
		return nil
	}
	if a.TokenFile != "" {
		tok, err := config.AdminToken(a.TokenFile)
		if err != nil {
			return fmt.Errorf("admin API: admin.token_file: %w", err)
		}
		s.token = []byte(tok)
	}
	var tcfg *tls.Config
	if a.Certificate != "" {
		pair, err := tls.LoadX509KeyPair(a.Certificate, a.Key)
		if err != nil {
			return fmt.Errorf("admin API: certificate: %w", err)
		}
		tcfg = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		if a.ClientCA != "" {
			pem, err := os.ReadFile(a.ClientCA)
			if err != nil {
				return fmt.Errorf("admin API: client CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("admin API: %s holds no PEM certificate", a.ClientCA)
			}
			tcfg.ClientCAs = pool
			tcfg.ClientAuth = tls.VerifyClientCertIfGiven
			s.needCert = true
		}
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return cfg.ListenError("admin.listen", "the admin API", a.Listen, int(a.Addr.Port()), err)
	}
	if tcfg != nil {
		ln = tls.NewListener(ln, tcfg)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: idleTimeout,
		ErrorLog: slog.NewLogLogger(s.o.Log.Handler(), slog.LevelWarn)}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.o.Log.Error("admin API stopped", "err", err)
		}
	}()
	s.o.Log.Info("admin API listening", "addr", ln.Addr().String(), "tls", tcfg != nil, "token", s.token != nil)
	return nil
}

// Addr is the address the API listens on, nil when off.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Server) port() int {
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

// Draining makes /readyz fail, so load balancers stop sending new
// clients while Sluice shuts down.
func (s *Server) Draining() { s.stopping.Store(true) }

// Shutdown stops the API.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.o.Metrics != nil {
		s.o.Metrics.Registry.MustRegister(queueCollector{s.o.Queue})
		mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(s.o.Metrics.Registry, promhttp.HandlerOpts{})))
	}
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/queues", s.listQueues)
	api.HandleFunc("GET /api/v1/queues/{identity...}", s.showQueue)
	api.HandleFunc("POST /api/v1/queue-actions/{action}", s.queueAction)
	api.HandleFunc("GET /api/v1/messages", s.listMessages)
	api.HandleFunc("GET /api/v1/messages/{id}", s.showMessage)
	api.HandleFunc("POST /api/v1/messages/{id}/{action}", s.messageAction)
	api.HandleFunc("GET /api/v1/track", s.track)
	api.HandleFunc("GET /api/v1/health", s.health)
	api.HandleFunc("POST /api/v1/test-send", s.testSend)
	api.HandleFunc("POST /api/v1/reload", s.reload)
	mux.Handle("/api/", s.auth(api))
	// Profiles of the running relay, for performance work on a live node
	// (go tool pprof http://127.0.0.1:8025/debug/pprof/profile).
	prof := http.NewServeMux()
	prof.HandleFunc("/debug/pprof/", pprof.Index)
	prof.HandleFunc("/debug/pprof/profile", pprof.Profile)
	prof.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	prof.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/pprof/", s.auth(prof))
	// A web page the admin opens must not act on the API: browsers post
	// forms cross-origin without asking (Caddy's admin.go checks Origin
	// for the same reason). The CLI sends no Origin and passes.
	deny := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.o.Log.Warn("admin API request refused: cross-origin", "client", r.RemoteAddr, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		writeError(w, http.StatusForbidden, "cross-origin request refused: the admin API does not take requests from web pages; use the sluice CLI or curl")
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(deny)
	guarded := cop.Handler(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// CrossOriginProtection lets GET through, but a GET here is not
		// without effect: /debug/pprof/profile runs a CPU profile for
		// as long as asked. A page's <img src> says where it comes from;
		// an address the admin types says "none".
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			deny(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

// LoopbackHost reports whether host (with or without a port) names this
// machine by a loopback address or "localhost". Without credentials that
// is the only name the API answers to: a page whose own name an attacker
// rebinds to 127.0.0.1 (DNS rebinding) asks for that name, not for these.
// The CLI sends its token over plain HTTP to these names only, for the
// same reason: a name that resolves to loopback today may not tomorrow.
func LoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// auth lets a request through when the API needs no credentials
// (loopback without a token file) and it is addressed to loopback, or it
// carries the bearer token or a verified client certificate.
func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		needCert := s.needCert
		if s.token == nil && !needCert {
			if !LoopbackHost(r.Host) {
				s.o.Log.Warn("admin API request refused: not addressed to loopback", "client", r.RemoteAddr, "path", r.URL.Path, "host", r.Host)
				writeError(w, http.StatusForbidden, fmt.Sprintf("this admin API has no credentials, so it answers only requests for 127.0.0.1, ::1 or localhost, not %q; use e.g. http://127.0.0.1:%d, or set admin.token_file", r.Host, s.port()))
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		if needCert && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			h.ServeHTTP(w, r)
			return
		}
		if s.token != nil {
			// The scheme's name is case-insensitive (RFC 9110 §11.1):
			// "bearer" from a script is the same credential.
			scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			if ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.token) == 1 {
				h.ServeHTTP(w, r)
				return
			}
		}
		s.o.Log.Warn("admin API request refused: no valid credentials", "client", r.RemoteAddr, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
		writeError(w, http.StatusUnauthorized, "this admin API needs credentials: send 'Authorization: Bearer <token from admin.token_file>' (sluice reads it with --token-file or SLUICE_ADMIN_TOKEN) or a client certificate signed by admin.client_ca")
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	if s.o.Ready != nil {
		if err := s.o.Ready(); err != nil {
			// Anyone who reaches the port may ask (load balancers carry
			// no token): the answer says why, not where the data lives
			// or how much room is left; the log and sluice health do.
			writeError(w, http.StatusServiceUnavailable, "not accepting mail: the queue's disk is below queue.min_free_space; sluice health gives the details")
			return
		}
	}
	fmt.Fprintln(w, "ready")
}
