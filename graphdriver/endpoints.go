package graphdriver

import "net/http"

// jsonEndpoint describes an endpoint whose request and answer are both
// JSON.
type jsonEndpoint struct {
	// serve runs the call against the driver.
	serve func(d Driver, req *Request) (*Response, error)

	// needsID rejects a request without a layer ID before the driver sees
	// it.
	needsID bool

	// errStatus is the HTTP status of a failed call; zero means 500, which
	// dockerd turns into an error carrying Err.
	errStatus int
}

// jsonEndpoints are the JSON endpoints by path. Init and Cleanup change the
// handler's state and are served apart; Diff and ApplyDiff carry tar
// streams and are served in stream.go.
var jsonEndpoints = map[string]jsonEndpoint{
	PathCreate:          {serve: create, needsID: true},
	PathCreateReadWrite: {serve: createReadWrite, needsID: true},
	PathRemove:          {serve: remove, needsID: true},
	PathGet:             {serve: get, needsID: true},
	PathPut:             {serve: put, needsID: true},
	PathGetMetadata:     {serve: getMetadata, needsID: true},
	PathChanges:         {serve: changes, needsID: true},
	PathDiffSize:        {serve: diffSize, needsID: true},
	PathStatus:          {serve: status},
	PathCapabilities:    {serve: capabilities},

	// dockerd reads any failed Exists as "does not exist" and drops its
	// error, so Exists is always answered with 200 and a failure only
	// sets Err next to the false.
	PathExists: {serve: exists, needsID: true, errStatus: http.StatusOK},
}

func createOpts(req *Request) CreateOpts {
	return CreateOpts{MountLabel: req.MountLabel, StorageOpt: req.StorageOpt}
}

func create(d Driver, req *Request) (*Response, error) {
	return nil, d.Create(req.ID, req.Parent, createOpts(req))
}

func createReadWrite(d Driver, req *Request) (*Response, error) {
	return nil, d.CreateReadWrite(req.ID, req.Parent, createOpts(req))
}

func remove(d Driver, req *Request) (*Response, error) {
	return nil, d.Remove(req.ID)
}

func get(d Driver, req *Request) (*Response, error) {
	dir, err := d.Get(req.ID, req.MountLabel)
	if err != nil {
		return nil, err
	}
	return &Response{Dir: dir}, nil
}

func put(d Driver, req *Request) (*Response, error) {
	return nil, d.Put(req.ID)
}

func exists(d Driver, req *Request) (*Response, error) {
	return &Response{Exists: d.Exists(req.ID)}, nil
}

func status(d Driver, _ *Request) (*Response, error) {
	return &Response{Status: d.Status()}, nil
}

func getMetadata(d Driver, req *Request) (*Response, error) {
	metadata, err := d.GetMetadata(req.ID)
	if err != nil {
		return nil, err
	}
	return &Response{Metadata: metadata}, nil
}

func changes(d Driver, req *Request) (*Response, error) {
	changes, err := d.Changes(req.ID, req.Parent)
	if err != nil {
		return nil, err
	}
	return &Response{Changes: changes}, nil
}

func diffSize(d Driver, req *Request) (*Response, error) {
	size, err := d.DiffSize(req.ID, req.Parent)
	if err != nil {
		return nil, err
	}
	return &Response{Size: size}, nil
}

func capabilities(d Driver, _ *Request) (*Response, error) {
	caps := d.Capabilities()
	return &Response{Capabilities: &caps}, nil
}
