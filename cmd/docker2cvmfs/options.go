package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/imageref"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/progress"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/publish"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/repository"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/internal/source"
	"github.com/cvmfs-contrib/cvmfs-graphdriver/thinimage"
)

// repoOptions name a repository and where it is.
type repoOptions struct {
	repository   string
	subdirectory string
	cvmfsRoot    string
}

func (o *repoOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.repository, "repository", "r", "",
		"CernVM-FS repository that holds the layers, e.g. unpacked.cern.ch")
	f.StringVarP(&o.subdirectory, "subdirectory", "s", repository.DefaultSubdirectory+"/",
		"directory of the repository that holds the layers")
	f.StringVar(&o.cvmfsRoot, "cvmfs-root", thinimage.DefaultRoot, "directory that stands for /cvmfs")
}

// repo returns the repository the flags name.
func (o *repoOptions) repo() (repository.Repo, error) {
	root, err := filepath.Abs(o.cvmfsRoot)
	if err != nil {
		return repository.Repo{}, fmt.Errorf("failed to resolve --cvmfs-root %q: %w", o.cvmfsRoot, err)
	}
	return repository.New(root, o.repository, o.subdirectory)
}

// conversionOptions are the flags make-thin and thin share.
type conversionOptions struct {
	repoOptions
	input          string
	output         string
	releaseManager bool
	progress       string
}

func (o *conversionOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.input, "input-reference", "i", "",
		"image to make thin (see 'docker2cvmfs --help' for the syntax)")
	f.StringVarP(&o.output, "output-reference", "o", "", "where to write the thin image, in the same syntax")
	o.repoOptions.addFlags(cmd)
	f.BoolVar(&o.releaseManager, "release-manager", false,
		"publish through 'cvmfs_server transaction' and 'publish' (on a CernVM-FS release manager)")
	f.StringVar(&o.progress, "progress", string(progress.Auto), "progress output: auto, tty, plain or quiet")
}

// publisher returns where layers go.
func (o *conversionOptions) publisher(repo repository.Repo) publish.Publisher {
	if o.releaseManager {
		return publish.ReleaseManager{Repo: repo}
	}
	return publish.Local{Repo: repo}
}

// openInput parses and opens the input image, counting what is streamed
// out of the daemon on the printer.
func openInput(ctx context.Context, raw string, printer *progress.Printer) (*source.Image, error) {
	ref, err := imageref.Parse(raw)
	if err != nil {
		return nil, err
	}
	opts := source.Options{TempDir: os.Getenv("TMPDIR")}
	if printer != nil {
		opts.SaveProgress = func(name string) source.ByteCounter {
			return &saveTask{printer.Start("reading "+name+" from the docker daemon", -1)}
		}
	}
	return source.Open(ctx, ref, opts)
}

// saveTask adapts a progress task to source.ByteCounter.
type saveTask struct{ *progress.Task }

func (t *saveTask) Done(err error) { t.Task.Done("read", err) }
