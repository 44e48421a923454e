package source

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/imageref"
)

// testImage returns a random image of three layers with some configuration.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Env = []string{"PATH=/bin", "A=b"}
	cfg.Config.Cmd = []string{"sh", "-c", "echo hi"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// checkSame compares an opened image with the image it was written from,
// reading every layer.
func checkSame(t *testing.T, got *Image, want v1.Image) {
	t.Helper()
	wantCfg, err := want.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Config.Config.Env, ",") != strings.Join(wantCfg.Config.Env, ",") {
		t.Errorf("Env %q, want %q", got.Config.Config.Env, wantCfg.Config.Env)
	}
	wantLayers, err := want.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != len(wantLayers) {
		t.Fatalf("%d layers, want %d", len(got.Layers), len(wantLayers))
	}
	for i, l := range got.Layers {
		wantDiff, _ := wantLayers[i].DiffID()
		if l.DiffID != wantDiff {
			t.Errorf("layer %d diff ID %s, want %s", i, l.DiffID, wantDiff)
		}
		rc, err := l.Open()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if l.Size >= 0 && n != l.Size {
			t.Errorf("layer %d: read %d bytes, size says %d", i, n, l.Size)
		}
	}
}

func TestOpenArchive(t *testing.T) {
	img := testImage(t)
	p := filepath.Join(t.TempDir(), "img.tar")
	tag, _ := name.NewTag("e2e/img:v1")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{"docker-archive:" + p, "docker-archive:" + p + ":e2e/img:v1"} {
		t.Run(ref, func(t *testing.T) {
			r, err := imageref.Parse(ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Open(context.Background(), r, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			checkSame(t, got, img)
			if !strings.HasPrefix(got.Origin, "docker-archive:/") {
				t.Errorf("origin %q", got.Origin)
			}
		})
	}

	for _, ref := range []string{"docker-archive:" + p + ":e2e/other", "docker-archive:/nonexistent.tar"} {
		t.Run("missing "+ref, func(t *testing.T) {
			r, _ := imageref.Parse(ref)
			_, err := Open(context.Background(), r, Options{})
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Open = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestOpenLayout(t *testing.T) {
	img := testImage(t)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefNameAnnotation: "v1"})); err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{"oci:" + dir, "oci:" + dir + ":v1"} {
		t.Run(ref, func(t *testing.T) {
			r, _ := imageref.Parse(ref)
			got, err := Open(context.Background(), r, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			checkSame(t, got, img)
		})
	}
	r, _ := imageref.Parse("oci:" + dir + ":v2")
	if _, err := Open(context.Background(), r, Options{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a missing tag = %v, want ErrNotFound", err)
	}
}

// dropBlobs wraps a registry so that every blob download stops after half
// of its bytes, with the connection closed, as a failing network does.
func dropBlobs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) < 2048 { // the configuration
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
}

// basicAuth refuses every request without the given credentials.
func basicAuth(h http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// pushTo pushes img to the registry at host and returns its reference.
func pushTo(t *testing.T, host string, img v1.Image, kc authn.Keychain) string {
	t.Helper()
	ref := host + "/e2e/img:v1"
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuthFromKeychain(kc)); err != nil {
		t.Fatal(err)
	}
	return ref
}

type staticKeychain struct{ user, password string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: k.user, Password: k.password}, nil
}

func TestOpenRegistry(t *testing.T) {
	img := testImage(t)
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := pushTo(t, host, img, authn.DefaultKeychain)

	r, _ := imageref.Parse("docker://" + ref)
	got, err := Open(context.Background(), r, Options{Keychain: authn.NewMultiKeychain()})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	checkSame(t, got, img)
	if want := "e2e/img:v1@http://" + host + "/v2"; got.Origin != want {
		t.Errorf("origin %q, want %q", got.Origin, want)
	}

	missing, _ := imageref.Parse("docker://" + host + "/e2e/none:v1")
	if _, err := Open(context.Background(), missing, Options{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a missing image = %v, want ErrNotFound", err)
	}
}

func TestOpenRegistryAuth(t *testing.T) {
	img := testImage(t)
	srv := httptest.NewServer(basicAuth(registry.New(registry.Logger(nopLogger())), "user", "secret"))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := pushTo(t, host, img, staticKeychain{"user", "secret"})
	r, _ := imageref.Parse("docker://" + ref)

	if _, err := Open(context.Background(), r, Options{Keychain: staticKeychain{"user", "wrong"}}); err == nil ||
		!strings.Contains(err.Error(), "refused access") {
		t.Errorf("Open with wrong credentials = %v, want a refusal", err)
	}
	got, err := Open(context.Background(), r, Options{Keychain: staticKeychain{"user", "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	got.Close()
}

func TestOpenRegistryDroppedMidLayer(t *testing.T) {
	img, err := random.Image(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Logger(nopLogger()))
	srv := httptest.NewServer(reg)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := pushTo(t, host, img, authn.DefaultKeychain)
	srv.Close()

	dropping := httptest.NewServer(dropBlobs(reg))
	defer dropping.Close()
	ref = strings.Replace(ref, host, strings.TrimPrefix(dropping.URL, "http://"), 1)

	r, _ := imageref.Parse("docker://" + ref)
	got, err := Open(context.Background(), r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	rc, err := got.Layers[0].Open()
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
	}
	if err == nil {
		t.Fatal("reading a layer whose download was cut succeeded")
	}
}

func TestOpenDaemonUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	r, _ := imageref.Parse("busybox")
	_, err := Open(context.Background(), r, Options{})
	if err == nil || !strings.Contains(err.Error(), "failed to reach the docker daemon") {
		t.Fatalf("Open = %v, want an error saying the daemon cannot be reached", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "docker2cvmfs-save-*")); len(matches) > 0 {
		t.Logf("temporary files (maybe of other runs): %v", matches)
	}
}
