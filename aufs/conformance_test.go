package aufs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/graphdriver/graphtest"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/cvmfs"
)

// kernelEnv makes the tests mount with the kernel's aufs instead of the
// emulator; `make test-aufs` sets it. The tests then fail, rather than
// skip, when the kernel lacks aufs.
const kernelEnv = "CVMFS_GRAPHDRIVER_AUFS"

func useKernel() bool { return os.Getenv(kernelEnv) != "" }

func TestMain(m *testing.M) {
	if useKernel() {
		if os.Geteuid() != 0 {
			fmt.Fprintf(os.Stderr, "%s is set: the aufs tests mount the kernel's aufs and need root\n", kernelEnv)
			os.Exit(1)
		}
		if err := Supported(); err != nil {
			fmt.Fprintf(os.Stderr, "%s is set, but the aufs tests cannot run against the kernel: %v\n", kernelEnv, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// testKernel returns the kernel facts of a test driver: the kernel's own
// with the kernel's aufs, those of an aufs built with maxBranches branches
// with the emulator.
func testKernel(maxBranches int) kernel {
	if useKernel() {
		return detectKernel()
	}
	return kernel{maxBranches: maxBranches, xino: localXino(shmDir), pageSize: os.Getpagesize()}
}

// mounters hands out the mount step of test drivers: the kernel's, or one
// emulator per home, which outlives the driver as the kernel outlives a
// plugin that is restarted.
type mounters struct {
	maxBranches int

	mu        sync.Mutex
	emulators map[string]*emulator
}

func newMounters(maxBranches int) *mounters {
	return &mounters{maxBranches: maxBranches, emulators: make(map[string]*emulator)}
}

func (ms *mounters) forHome(home string) mounter {
	if useKernel() {
		return newKernelMounter()
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	e := ms.emulators[home]
	if e == nil {
		e = newEmulator(ms.maxBranches)
		ms.emulators[home] = e
	}
	return e
}

func (ms *mounters) emulator(home string) *emulator {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.emulators[home]
}

// TestConformance runs the shared backend suite against the aufs backend:
// with the emulator, or with the kernel's aufs under `make test-aufs`.
func TestConformance(t *testing.T) {
	k := testKernel(defaultMaxBranches)
	ms := newMounters(k.maxBranches)
	factory := func(t testing.TB, home, cvmfsRoot string) graphdriver.Driver {
		d, err := newDriver(graphdriver.InitOptions{Home: home}, cvmfsRoot, ms.forHome(home), k)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return d
	}
	// An aufs built for hundreds of branches would have the suite stack
	// that many layers to reach its limit; without a limit the suite
	// stacks 128, which such an aufs takes.
	maxLower := k.maxBranches - 1
	if maxLower > 128 {
		maxLower = 0
	}
	graphtest.Run(t, factory, graphtest.Options{
		MaxLowerLayers: maxLower,
		InspectMount: func(t testing.TB, id string, m *mountinfo.Info) {
			home := filepath.Dir(filepath.Dir(m.Mountpoint))
			if useKernel() {
				inspectKernelMount(t, home, id, m)
			} else {
				inspectEmulatedMount(t, ms.emulator(home), home, id, m)
			}
		},
	})
}

// TestRepositories runs the cases of the internal mount method against the
// aufs backend, with the emulator (or the kernel's aufs under `make
// test-aufs`) over the repositories the stand-in client mounts.
func TestRepositories(t *testing.T) {
	k := testKernel(defaultMaxBranches)
	ms := newMounters(k.maxBranches)
	factory := func(t testing.TB, home, cvmfsRoot string, repos *cvmfs.Repositories) graphdriver.Driver {
		d, err := newDriver(graphdriver.InitOptions{Home: home}, cvmfsRoot, ms.forHome(home), k, WithRepositories(repos))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return d
	}
	graphtest.RunRepositories(t, factory, graphtest.Options{})
}

// inspectEmulatedMount checks that a layer is mounted by the emulator with
// its own diff directory as the only writable branch, on top.
func inspectEmulatedMount(t testing.TB, e *emulator, home, id string, m *mountinfo.Info) {
	t.Helper()
	if m.FSType != "tmpfs" || m.Source != emulatorSource {
		t.Errorf("layer %s is mounted as %s from %s, want the emulator's tmpfs", id, m.FSType, m.Source)
		return
	}
	checkBranchList(t, id, home, e.branches(m.Mountpoint))
}

// inspectKernelMount checks the branches of an aufs mount, as aufs lists
// them in sysfs, when it does.
func inspectKernelMount(t testing.TB, home, id string, m *mountinfo.Info) {
	t.Helper()
	if m.FSType != "aufs" {
		t.Errorf("layer %s is mounted as %s, want aufs", id, m.FSType)
		return
	}
	var si string
	for _, opt := range strings.Split(m.VFSOptions, ",") {
		if v, ok := strings.CutPrefix(opt, "si="); ok {
			si = v
		}
	}
	if si == "" {
		return
	}
	var branches []string
	for i := 0; ; i++ {
		data, err := os.ReadFile(filepath.Join("/sys/fs/aufs", "si_"+si, fmt.Sprintf("br%d", i)))
		if err != nil {
			break
		}
		branches = append(branches, strings.TrimSpace(string(data)))
	}
	if len(branches) > 0 {
		checkBranchList(t, id, home, branches)
	}
}

// checkBranchList checks branches given as "dir=perm", top first.
func checkBranchList(t testing.TB, id, home string, branches []string) {
	t.Helper()
	if len(branches) < 2 {
		t.Errorf("layer %s is mounted with branches %q, want its diff directory over at least one more", id, branches)
		return
	}
	if want := filepath.Join(home, diffDirName, id) + "=" + permRW; branches[0] != want {
		t.Errorf("layer %s is mounted with top branch %s, want %s", id, branches[0], want)
	}
	for _, b := range branches[1:] {
		if !strings.HasSuffix(b, "="+permROWH) {
			t.Errorf("layer %s is mounted with branch %s, want every branch below the top one %s", id, b, permROWH)
		}
	}
}
