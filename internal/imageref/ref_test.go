package imageref

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		raw     string
		want    Reference
		wantErr bool
	}{
		{raw: "busybox", want: Reference{Transport: Daemon, Name: "busybox"}},
		{raw: "busybox:1.36", want: Reference{Transport: Daemon, Name: "busybox:1.36"}},
		{raw: "e2e/img:latest", want: Reference{Transport: Daemon, Name: "e2e/img:latest"}},
		{raw: "localhost:5000/img", want: Reference{Transport: Daemon, Name: "localhost:5000/img"}},
		{raw: "docker-daemon:e2e/img:v1", want: Reference{Transport: Daemon, Name: "e2e/img:v1"}},
		{raw: "docker://127.0.0.1:5000/e2e/img:v1", want: Reference{Transport: Registry, Name: "127.0.0.1:5000/e2e/img:v1"}},
		{raw: "docker-archive:/tmp/img.tar", want: Reference{Transport: Archive, Path: "/tmp/img.tar"}},
		{raw: "docker-archive:/tmp/img.tar:e2e/img:v1", want: Reference{Transport: Archive, Path: "/tmp/img.tar", Name: "e2e/img:v1"}},
		{raw: "oci:/tmp/layout", want: Reference{Transport: Layout, Path: "/tmp/layout"}},
		{raw: "oci:/tmp/layout:v1", want: Reference{Transport: Layout, Path: "/tmp/layout", Name: "v1"}},
		{raw: "oci:rel/layout:v1", want: Reference{Transport: Layout, Path: "rel/layout", Name: "v1"}},
		{raw: "", wantErr: true},
		{raw: "docker://", wantErr: true},
		{raw: "docker-daemon:", wantErr: true},
		{raw: "docker-archive:", wantErr: true},
		{raw: "oci::v1", wantErr: true},
		{raw: "dir:/tmp/x", wantErr: true},
		{raw: "docker:/tmp/x", wantErr: true},
		{raw: "img with blank", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := Parse(tt.raw)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want an error", tt.raw, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.raw, err)
			}
			tt.want.Raw = tt.raw
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.raw, got, tt.want)
			}
		})
	}
}
