package dockertest

// busyboxApplets are the commands the tests run inside containers. Each is a
// symlink to /bin/busybox in the image; a short fixed list keeps listings of
// the whole image short.
var busyboxApplets = []string{
	"[", "cat", "cut", "echo", "env", "false", "find", "head", "ln", "ls",
	"md5sum", "mkdir", "readlink", "rm", "sh", "sleep", "sort", "stat",
	"test", "touch", "true", "wc",
}

// BusyboxLayer returns a layer holding the host's static busybox as
// /bin/busybox and a symlink to it for every applet the tests use: the
// smallest root file system a container can run commands in.
func BusyboxLayer() Layer {
	l := Layer{
		Dir("bin"),
		{Path: "bin/busybox", Kind: KindFile, Source: Busybox, Mode: 0o755},
	}
	for _, applet := range busyboxApplets {
		l = append(l, Symlink("bin/"+applet, "busybox"))
	}
	return l
}
