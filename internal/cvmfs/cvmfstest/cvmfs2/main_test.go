package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadParameters(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "default.conf")
	local := filepath.Join(dir, "default.local")
	write := func(p, content string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(conf, "# defaults\nCVMFS_STANDIN_SOURCE=/from/conf\nCVMFS_STANDIN_LOG=/log/conf\n\nnot a setting\n")
	write(local, "export CVMFS_STANDIN_SOURCE=\"/from/local\"\n  CVMFS_OTHER = 'x y'\n#CVMFS_STANDIN_LOG=/commented\n")

	p, err := readParameters([]string{conf, local, filepath.Join(dir, "missing.local")})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CVMFS_STANDIN_LOG", "")
	for name, want := range map[string]string{
		"CVMFS_STANDIN_SOURCE": "/from/local", // the later file wins
		"CVMFS_STANDIN_LOG":    "/log/conf",   // a comment sets nothing
		"CVMFS_OTHER":          "x y",
		"CVMFS_UNSET":          "",
	} {
		if got := p.get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	t.Setenv("CVMFS_STANDIN_SOURCE", "/from/env")
	if got := p.get("CVMFS_STANDIN_SOURCE"); got != "/from/env" {
		t.Errorf("with the environment set, CVMFS_STANDIN_SOURCE = %q, want /from/env", got)
	}

	if _, err := readParameters([]string{dir}); err == nil {
		t.Error("reading a directory as a parameter file did not fail")
	}
}
