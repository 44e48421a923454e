package dockertest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// tokenLifetime is how long a token is valid.
const tokenLifetime = 5 * time.Minute

// tokenServer hands out the JSON web tokens the registry's token
// authentication checks: signed with ES256 by a key whose self-signed
// certificate is the registry's root, carried in the token's x5c header.
// It grants every action asked for to the one user it knows.
//
// It also stands in front of the registry and passes every other request
// on to it, so that the registry and its realm share one address.
// go-containerregistry refuses a token realm on a loopback or private
// address unless it is the registry's own host and port, a guard against
// registries that would make clients call internal services.
type tokenServer struct {
	user, password string
	certPath       string
	key            *ecdsa.PrivateKey
	certDER        []byte
	srv            *http.Server
	addr           string
	backend        *url.URL // the registry itself

	mu     sync.Mutex
	issued int
}

// startTokenServer serves tokens on a free port of 127.0.0.1, and passes
// other requests on to the registry at backend (host:port).
func startTokenServer(user, password, dir, backend string) (*tokenServer, error) {
	ts := &tokenServer{user: user, password: password, certPath: filepath.Join(dir, "token.crt")}
	key, der, err := newSigningKey(ts.certPath)
	if err != nil {
		return nil, err
	}
	ts.key, ts.certDER = key, der

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to start the token server: %w", err)
	}
	ts.addr = l.Addr().String()
	ts.backend = &url.URL{Scheme: "http", Host: backend}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", ts.serveToken)
	mux.Handle("/", httputil.NewSingleHostReverseProxy(ts.backend))
	ts.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go ts.srv.Serve(l)
	return ts, nil
}

func (ts *tokenServer) realm() string { return "http://" + ts.addr + "/token" }

func (ts *tokenServer) close() { ts.srv.Close() }

func (ts *tokenServer) issuedCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued
}

// serveToken answers GET /token?service=...&scope=... with basic
// credentials, as the distribution token protocol has it.
func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	user, password, ok := r.BasicAuth()
	if !ok || user != ts.user || password != ts.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="e2e token server"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"wrong user name or password"}]}`, http.StatusUnauthorized)
		return
	}
	token, err := ts.sign(user, r.URL.Query().Get("service"), r.URL.Query()["scope"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ts.mu.Lock()
	ts.issued++
	ts.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token":        token,
		"access_token": token,
		"expires_in":   int(tokenLifetime.Seconds()),
		"issued_at":    time.Now().UTC().Format(time.RFC3339),
	})
}

// tokenAccess is one resource a token grants actions on.
type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// sign returns a token granting the scopes, each "type:name:action,...".
func (ts *tokenServer) sign(subject, service string, scopes []string) (string, error) {
	access := []tokenAccess{}
	for _, scope := range scopes {
		for _, s := range strings.Fields(scope) {
			typ, rest, ok := strings.Cut(s, ":")
			i := strings.LastIndex(rest, ":")
			if !ok || i < 0 {
				continue
			}
			access = append(access, tokenAccess{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")})
		}
	}

	now := time.Now()
	jti := make([]byte, 8)
	rand.Read(jti)
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	claims := map[string]any{
		"iss":    registryIssuer,
		"sub":    subject,
		"aud":    service,
		"exp":    now.Add(tokenLifetime).Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"iat":    now.Unix(),
		"jti":    fmt.Sprintf("%x", jti),
		"access": access,
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signingInput := b64url(h) + "." + b64url(c)

	digest := sha256.Sum256([]byte(signingInput))
	rInt, sInt, err := ecdsa.Sign(rand.Reader, ts.key, digest[:])
	if err != nil {
		return "", err
	}
	// JWS ES256 signatures are r and s, 32 bytes each, big-endian.
	sig := make([]byte, 64)
	rInt.FillBytes(sig[:32])
	sInt.FillBytes(sig[32:])
	return signingInput + "." + b64url(sig), nil
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
