package graphdriver

// Manifest is the answer to /Plugin.Activate: the plugin implements the
// graphdriver interface and nothing else.
const Manifest = `{"Implements": ["GraphDriver"]}`

// The endpoints dockerd calls, as URL paths on the plugin socket.
const (
	PathInit            = "/GraphDriver.Init"
	PathCreate          = "/GraphDriver.Create"
	PathCreateReadWrite = "/GraphDriver.CreateReadWrite"
	PathRemove          = "/GraphDriver.Remove"
	PathGet             = "/GraphDriver.Get"
	PathPut             = "/GraphDriver.Put"
	PathExists          = "/GraphDriver.Exists"
	PathStatus          = "/GraphDriver.Status"
	PathGetMetadata     = "/GraphDriver.GetMetadata"
	PathCleanup         = "/GraphDriver.Cleanup"
	PathDiff            = "/GraphDriver.Diff"
	PathChanges         = "/GraphDriver.Changes"
	PathApplyDiff       = "/GraphDriver.ApplyDiff"
	PathDiffSize        = "/GraphDriver.DiffSize"
	PathCapabilities    = "/GraphDriver.Capabilities"
)

// Request is the JSON body of every call except Init and ApplyDiff. dockerd
// leaves out the fields a call does not use.
type Request struct {
	ID         string            `json:",omitempty"`
	Parent     string            `json:",omitempty"`
	MountLabel string            `json:",omitempty"`
	StorageOpt map[string]string `json:",omitempty"`
}

// InitRequest is the JSON body of GraphDriver.Init. dockerd sends the ID
// maps as null when user-namespace remapping is off.
type InitRequest struct {
	Home    string
	Opts    []string `json:"Opts"`
	UIDMaps []IDMap  `json:"UIDMaps"`
	GIDMaps []IDMap  `json:"GIDMaps"`
}

// Response is the JSON answer of every call except a successful Diff, whose
// answer is the raw tar stream. A call fills only the fields it returns;
// dockerd reads a missing field as its zero value, so Exists false and
// Size 0 are left out as well.
//
// A failed call sets Err and is answered with HTTP 500, which dockerd's
// plugin client turns into an error carrying Err. Two endpoints differ:
// dockerd drops any Cleanup answer that is not 200, so a failed Cleanup is
// a 200 with Err set, and it reads any failed Exists as "does not exist",
// so Exists is always a 200.
type Response struct {
	Err      string            `json:",omitempty"`
	Dir      string            `json:",omitempty"`
	Exists   bool              `json:",omitempty"`
	Status   [][2]string       `json:",omitempty"`
	Changes  []Change          `json:",omitempty"`
	Size     int64             `json:",omitempty"`
	Metadata map[string]string `json:",omitempty"`

	// Capabilities is set only in the answer to GraphDriver.Capabilities.
	// dockerd reads it from this field, not from the top level of the
	// answer: {"Capabilities":{"ReproducesExactDiffs":false}}.
	Capabilities *Capabilities `json:",omitempty"`
}
