package dockertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RegistryBinary is the distribution registry from Debian's docker-registry
// package.
const RegistryBinary = "/usr/bin/docker-registry"

// Registry timings.
const (
	registryStartTimeout = 20 * time.Second
	registryStopGrace    = 10 * time.Second
)

// Names the registry and its token server agree on.
const (
	registryService = "e2e-registry"
	registryIssuer  = "e2e-token-issuer"
)

// Registry is a private registry on 127.0.0.1 that asks for token
// authentication, as Docker Hub does, with a token server of its own that
// also serves as the registry's front door (Host).
type Registry struct {
	// Host is host:port of the registry, for image references.
	Host string
	// User and Password are the only credentials the token server accepts.
	User     string
	Password string
	// Dir holds the registry's configuration, storage and log.
	Dir string

	proc   *Process
	tokens *tokenServer
}

// StartRegistry runs /usr/bin/docker-registry with token authentication on
// a free port of 127.0.0.1, behind a token server that hands out tokens for
// the credentials in the result and passes registry requests on. Both are stopped, by pid and by closing
// the server, when the test ends; the registry's log is shown if it failed.
func StartRegistry(t *testing.T) *Registry {
	t.Helper()

	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Fatalf("the end-to-end tests need %s (Debian's docker-registry package): %v", RegistryBinary, err)
	}
	r := &Registry{Dir: t.TempDir(), User: "e2e", Password: "e2e-secret"}

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	backend := fmt.Sprintf("127.0.0.1:%d", port)
	tokens, err := startTokenServer(r.User, r.Password, r.Dir, backend)
	if err != nil {
		t.Fatal(err)
	}
	r.tokens = tokens
	t.Cleanup(tokens.close)
	r.Host = tokens.addr

	config := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(config, []byte(registryConfig(backend, tokens.realm(), tokens.certPath, filepath.Join(r.Dir, "data"))), 0o644); err != nil {
		t.Fatal(err)
	}

	p, err := StartProcess("docker-registry", filepath.Join(r.Dir, "registry.log"), []string{RegistryBinary, "serve", config}, os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	r.proc = p
	t.Cleanup(func() {
		if err := p.Stop(registryStopGrace); err != nil {
			t.Errorf("failed to stop the registry: %v", err)
		}
		if t.Failed() {
			t.Logf("registry log:\n%s", p.logTail(logTailOnFailure))
		}
	})

	if err := r.waitReady(backend); err != nil {
		t.Fatalf("%v\nregistry log:\n%s", err, p.logTail(logTailOnFailure))
	}
	t.Logf("registry %s (pid %d) with token server %s", r.Host, p.Pid(), tokens.realm())
	return r
}

// waitReady waits until the registry at backend answers /v2/ with its
// challenge.
func (r *Registry) waitReady(backend string) error {
	deadline := time.Now().Add(registryStartTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + backend + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				return nil
			}
			return fmt.Errorf("registry answered /v2/ with %s and %q, want a bearer challenge", resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
		if r.proc.Exited() {
			return fmt.Errorf("registry exited during start: %v", r.proc.exitError())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("registry did not answer within %s: %v", registryStartTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TokensIssued returns how many tokens the token server handed out, so
// that a test can tell token authentication was used.
func (r *Registry) TokensIssued() int { return r.tokens.issuedCount() }

// registryConfig returns the registry's configuration.
func registryConfig(addr, realm, certPath, dataDir string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
auth:
  token:
    realm: %s
    service: %s
    issuer: %s
    rootcertbundle: %s
`, dataDir, addr, realm, registryService, registryIssuer, certPath)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newSigningKey makes the token server's key and a self-signed certificate
// for it, written where the registry's rootcertbundle points.
func newSigningKey(certPath string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: registryIssuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certPath, pemData, 0o644); err != nil {
		return nil, nil, errors.Join(errors.New("failed to write the token certificate"), err)
	}
	return key, der, nil
}
