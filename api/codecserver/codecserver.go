// Package codecserver serves the payload codec over HTTP for the people who operate
// taxflow. Temporal's Web UI and CLI speak Temporal's remote codec protocol (POST
// …/decode and …/encode with Payloads as JSON); the SDK's handler implements it, and
// this package adds what the SDK leaves to us: who may call, from which browser origin,
// and how much.
//
// Two credentials are accepted, on two sets of routes:
//
//   - POST /decode, /encode: "Authorization: Bearer <API key>" of a key with the operate
//     scope (the API's key store). The CLI sends it with --codec-auth; a Web UI behind
//     SSO sends its own access token this way ("pass access token"), which needs a
//     verifier of that token in front of or instead of the key store.
//   - POST /codec/{token}/decode, /codec/{token}/encode: the local stack's random codec
//     token in the path, because the local Web UI, which has no SSO, cannot send an
//     Authorization header. The token is a secret of the run directory.
//
// Decoding fails closed: a payload that carries taxflow's encryption metadata but does
// not decrypt (tampered, truncated, unknown key) fails the whole request; nothing is
// ever passed back as if it were plaintext.
package codecserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/converter"

	"github.com/taxflow/taxflow/api"
)

// MaxBody bounds a request: Temporal refuses payloads over 2 MiB, and base64 in JSON
// adds a third.
const MaxBody = 8 << 20

// Headers the Web UI sends (Authorization and Authorization-Extras only with SSO).
var allowedHeaders = []string{"Content-Type", "Authorization", "Authorization-Extras", "X-Namespace"}

// Options configures the handler.
type Options struct {
	Codec converter.PayloadCodec
	// Keys resolves staff API keys; a key needs the operate scope. Nil turns the
	// bearer routes off (every call answers 401).
	Keys api.KeyStore
	// Token is the path credential of the local Web UI; empty turns those routes off.
	Token string
	// Origins are the browser origins (the Web UI's) that may call; others are refused.
	Origins []string
	Log     zerolog.Logger
}

type server struct {
	Options
	codec     http.Handler
	tokenHash [32]byte
}

// Handler returns the codec server.
func Handler(o Options) http.Handler {
	s := &server{Options: o, codec: converter.NewPayloadCodecHTTPHandler(o.Codec), tokenHash: sha256.Sum256([]byte(o.Token))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for _, op := range []string{"encode", "decode"} {
		mux.Handle("POST /"+op, s.staffKey(s.limited(s.codec)))
		mux.Handle("POST /codec/{token}/"+op, s.pathToken(s.limited(s.codec)))
	}
	return s.logRequests(s.cors(mux))
}

// cors answers the browser's preflight and marks answers readable by the allowed
// origins. A request from any other origin is refused before it is read: the Web UI is
// the only page that has business here.
func (s *server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" { // not a browser (the CLI, curl): nothing to allow
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if !slices.Contains(s.Origins, origin) {
			writeError(w, http.StatusForbidden, "origin_not_allowed", "this origin may not call the codec server; set TAXFLOW_CODEC_ORIGINS")
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", strings.Join(allowedHeaders, ", "))
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// staffKey admits a bearer API key with the operate scope.
func (s *server) staffKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := bearer(r.Header.Get("Authorization"))
		if key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="taxflow codec"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "send a staff API key: Authorization: Bearer <key>")
			return
		}
		if s.Keys == nil {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "API keys are not accepted here")
			return
		}
		p, found, err := s.Keys.Lookup(r.Context(), api.HashKey(key))
		if err != nil {
			s.Log.Error().Err(err).Msg("codec server: key lookup failed")
			writeError(w, http.StatusServiceUnavailable, "unavailable", "authentication is unavailable; retry later")
			return
		}
		if !found {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "unknown API key")
			return
		}
		setPrincipal(r, p.ID)
		if !p.Can(api.ScopeOperate) {
			writeError(w, http.StatusForbidden, "forbidden", "this API key lacks the scope "+api.ScopeOperate)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the credential of "Bearer <credential>"; the scheme is case-insensitive
// (RFC 9110).
func bearer(h string) string {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// pathToken admits the local Web UI's token, compared in constant time.
func (s *server) pathToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.PathValue("token")))
		if s.Token == "" || subtle.ConstantTimeCompare(got[:], s.tokenHash[:]) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "unknown codec token")
			return
		}
		setPrincipal(r, "codec-token")
		next.ServeHTTP(w, r)
	})
}

func (s *server) limited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		next.ServeHTTP(w, r)
	})
}

type infoKey struct{}

// reqInfo carries who called from the authentication to the request log.
type reqInfo struct{ principal string }

func setPrincipal(r *http.Request, id string) {
	if info, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		info.principal = id
	}
}

// logRequests logs method, route pattern, status and duration: never the path, which
// may hold the token, nor bodies, which hold personal data once decoded.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{}
		rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		next.ServeHTTP(rw, r)
		s.Log.Info().Str("method", r.Method).Str("route", r.Pattern).Int("status", rw.status).
			Dur("took", time.Since(start)).Str("principal", info.principal).Msg("codec request")
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	api.WriteJSON(w, status, map[string]api.Error{"error": {Code: code, Message: msg}})
}
